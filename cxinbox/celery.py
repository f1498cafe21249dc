import os

from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun, worker_init

from apps.core import request_id

# A deploy entry point (gunicorn, daphne, celery -A cxinbox): production unless told
# otherwise, so a missing variable fails at start instead of serving with DEBUG on.
# `make run` (Procfile) and the tests name their settings (docs/operations.md).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxinbox.settings.production")


class RetryOrHandBack(Task):
    """A retry that cannot be queued (the broker is down as the task fails) hands
    the task back instead of dropping it: Celery rejects it without requeue, which
    on Redis deletes it, so a pushed mention or a reply's send was lost. Requeued,
    it goes back to its queue, or, with Redis still down, stays in the unacked set
    for the visibility sweep."""

    def retry(self, *args, **kwargs):
        try:
            return super().retry(*args, **kwargs)
        except Reject as exc:
            if exc.requeue:
                raise
            raise Reject(exc.reason, requeue=True) from exc


app = Celery("cxinbox", task_cls=RetryOrHandBack)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _warm_text_models(**_kwargs):
    """Load lingua's language models and VADER's lexicon in the worker's parent,
    before the pool forks: every child shares them (copy-on-write) instead of
    loading them on its first message (~4-9 s each, docs/performance-history.md)."""
    try:
        from apps.insights.language import language_detect
        from apps.insights.sentiment import sentiment_score

        language_detect("warm up the language models")
        sentiment_score("warm up")
    except Exception:  # noqa: BLE001 - a cold start is slower, never broken
        import logging

        logging.getLogger(__name__).warning("could not preload the text models", exc_info=True)


@worker_init.connect
def _cpu_priority_kept(**_kwargs):
    """The worker's `nice` holds against the other sessions too (cxinbox/cpu_priority.py):
    in the parent, before the pool forks, so its processes share the session's priority."""
    from cxinbox.cpu_priority import autogroup_nice_follow

    autogroup_nice_follow()


@task_prerun.connect
@task_postrun.connect
def _database_connections_tidy(sender=None, **_kwargs):
    """Before and after each task, what Django does around each request: a
    connection older than CONN_MAX_AGE or left unusable by an error is closed,
    a healthy one is kept (CELERY_DB_REUSE_MAX keeps Celery from closing it).
    Not for a task run eagerly: it runs inside its caller's transaction."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@setup_logging.connect
def _logging_kept(loglevel=None, **_kwargs):
    """A worker keeps Django's LOGGING (JSON lines in production, with the request and the
    task) instead of Celery's own handlers and format: with a receiver here Celery leaves
    the root logger alone. Django has configured it by now (the worker loads the app's
    tasks first); if not, it is configured here. The app's loggers follow LOG_LEVEL; the
    worker's -l still sets Celery's own ("celery@host ready.", a task's failure), which
    supervisors and the reliability tests read, whatever LOG_LEVEL says."""
    import logging
    import logging.config

    if not logging.getLogger().handlers:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger("celery").setLevel(loglevel)


@before_task_publish.connect
def _request_id_send(headers=None, **_kwargs):
    """A task carries the request id of whatever queues it (apps/core/request_id.py)."""
    request_id.task_headers_add(headers)


@task_prerun.connect
def _request_id_take(task=None, **_kwargs):
    if task is not None:
        request_id.task_started(task)


@task_postrun.connect
def _request_id_drop(task=None, **_kwargs):
    if task is not None:
        request_id.task_finished(task)
