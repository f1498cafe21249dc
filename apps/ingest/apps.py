from django.apps import AppConfig


class IngestConfig(AppConfig):
    """Mentions into conversations: the polls, the push deliveries' batches, threading and
    storing, then routing in place. Above routing and the inbox, which it writes into;
    below reports (docs/architecture.md, "Layers"). No models: it writes the inbox's.
    Its tasks are found by name where Celery has not discovered them (apps/core/task_queue.py)."""

    name = "apps.ingest"
    label = "ingest"
