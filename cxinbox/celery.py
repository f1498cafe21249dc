import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.base")

app = Celery("cxinbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _warm_text_models(**_kwargs):
    """Load lingua's language models and VADER's lexicon in the worker's parent,
    before the pool forks: every child shares them (copy-on-write) instead of
    loading them on its first message (~4-9 s each, docs/performance.md)."""
    try:
        from apps.insights.language import language_detect
        from apps.insights.sentiment import sentiment_score

        language_detect("warm up the language models")
        sentiment_score("warm up")
    except Exception:  # noqa: BLE001 - a cold start is slower, never broken
        import logging

        logging.getLogger(__name__).warning("could not preload the text models", exc_info=True)
