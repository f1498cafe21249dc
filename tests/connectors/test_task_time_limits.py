"""Every Celery task has a soft and a hard time limit below the broker's visibility
timeout (issue 18): a task running past that timeout is handed to a second worker and
runs twice; a 900 KB message once held a worker for minutes with no limit at all."""
from django.conf import settings


def _visibility_timeout() -> float:
    # what production runs with (Redis); the embedded file broker has no such timeout
    return float((settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("visibility_timeout", 3600))


def _registered_tasks():
    from cxinbox.celery import app

    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"ingest.push_delivery", "connectors.poll_account", "outbound.send_message",
            "routing.route_conversations", "reports.weekly_digest"} <= set(tasks)
    return app, tasks


def test_every_task_has_soft_and_hard_limits_below_the_visibility_timeout():
    app, tasks = _registered_tasks()
    visibility = _visibility_timeout()
    for name, task in sorted(tasks.items()):
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert hard and soft, f"{name} runs without a time limit"
        assert soft < hard < visibility, f"{name}: soft {soft} s, hard {hard} s, visibility {visibility} s"


def test_only_named_tasks_run_longer_than_the_default():
    app, tasks = _registered_tasks()
    longer = sorted(name for name, task in tasks.items()
                    if (task.time_limit or app.conf.task_time_limit) > settings.CELERY_TASK_TIME_LIMIT)
    assert longer == ["accounts.bulk_assign", "reports.apply_rollups", "reports.warm_cache", "reports.weekly_digest"]
    assert tasks["ingest.push_delivery"].time_limit in (None, settings.CELERY_TASK_TIME_LIMIT)
