"""Celery tasks by name, for the services that queue them.

An app's tasks module imports its services (a task is a thin call of one); a service that
queued a task by importing that module closed a cycle, which imports inside functions used to
dodge (issue 20). A service names the task instead (its Celery name, the contract beat
schedules and the queues' routes already use) and gets the registered task object: the same
`delay`/`apply_async`, run eagerly in tests, patched by the same `mock.patch.object`."""
from cxinbox.celery import app

_discovered = False


def task_named(name: str):
    """The registered task `name`. Celery's autodiscovery of every app's tasks module runs in
    workers only; another process (the web tier) runs it here the first time a name is not
    known yet."""
    global _discovered
    try:
        return app.tasks[name]
    except KeyError:
        if _discovered:
            raise
        app.loader.import_default_modules()
        _discovered = True
        return app.tasks[name]
