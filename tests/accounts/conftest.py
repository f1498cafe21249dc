import pytest


@pytest.fixture
def celery_eager():
    """Tasks fired after commit run in-process (the routing drain), as a worker would run them."""
    from cxinbox.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old
