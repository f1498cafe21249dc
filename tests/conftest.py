import os

import pytest
from django.conf import settings

from apps.connectors.standins.twitter import TwitterStandIn

from .factories import ChannelAccountFactory, QueueFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _routing_config_fresh():
    """Routing shares its configuration between batches of a process; a test's
    rows are rolled back without the signals that would tell it."""
    from apps.routing.config_cache import routing_config_forget

    routing_config_forget()
    yield
    routing_config_forget()


@pytest.fixture
def twitter_api(settings):
    """The stand-in Twitter API v2 on 127.0.0.1; TWITTER_API_BASE_URL points at it."""
    with TwitterStandIn() as server:
        settings.TWITTER_API_BASE_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        yield server


@pytest.fixture
def local_channel_layers(settings, request):
    """An in-memory channel layer and cache of this test's own (sockets driven in process; the
    Redis layer is covered by the browser tests)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"layers-{request.node.nodeid}"}}


@pytest.fixture
def eager_celery():
    """Tasks run in-process, as a worker would run them."""
    from cxinbox.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture
def team(db):
    return TeamFactory()


@pytest.fixture
def queue(team):
    return QueueFactory(team=team, is_default=True)


@pytest.fixture
def agent(team):
    user = UserFactory(role="agent")
    team.members.add(user)
    return user


@pytest.fixture
def supervisor(team):
    user = UserFactory(role="supervisor")
    team.members.add(user)
    team.leads.add(user)
    return user


@pytest.fixture
def admin_user(db):
    return UserFactory(role="admin", is_superuser=True, is_staff=True)


@pytest.fixture
def marketing_user(db):
    return UserFactory(role="marketing")


@pytest.fixture
def twitter_account(db):
    return ChannelAccountFactory()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def redis_available() -> bool:
    return bool(settings.REDIS_URL)


requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis); .ci/run sets it"
)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, checked at the end for connections left open
    (tests/hygiene.py) before it is dropped."""
    yield
    from .hygiene import database_connections_check

    with django_db_blocker.unblock():
        database_connections_check()


@pytest.fixture(scope="session", autouse=True)
def _redis_keys_left_behind_removed():
    """The Redis keys this run created are deleted at its end (tests/hygiene.py)."""
    from .hygiene import redis_keys_created_delete, redis_keys_snapshot

    client, before = redis_keys_snapshot()
    yield
    redis_keys_created_delete(client, before)
