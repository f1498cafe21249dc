from django.apps import AppConfig


class IngestConfig(AppConfig):
    """Mentions into conversations: the polls, the push deliveries' batches, threading and
    storing, then routing in place. Above routing and the inbox, which it writes into;
    below reports (docs/architecture.md, "Layers"). No models: it writes the inbox's."""

    name = "apps.ingest"
    label = "ingest"

    def ready(self):
        # Registered in every process, the web tier's included: the webhook (apps/connectors,
        # below this app) queues ingest.push_delivery by name from Celery's registry, and
        # Celery's autodiscovery runs only in workers.
        from . import tasks  # noqa: F401
