"""Login lockout per user and per address, separately (django-axes), a cool-off that
failures during the lockout do not extend, the client address taken from the proxy
header only when proxies are declared, and the API's throttles (429 + Retry-After)."""
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"  # tests.factories.UserFactory


def _login(client, username, password, ip="10.1.1.1", **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_password_spray_over_ten_users_locks_the_address(client):
    users = UserFactory.create_batch(10)
    answers = [_login(client, u.username, "Summer2026!").status_code for u in users]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    # the address is locked, even for a right password ...
    assert _login(client, users[0].username, PASSWORD).status_code == 429
    # ... but the users are not: each failed only once, and logs in from elsewhere
    assert _login(client, users[0].username, PASSWORD, ip="10.2.2.2").status_code == 302


def test_failures_for_one_user_from_many_addresses_lock_the_user(client, agent):
    answers = [_login(client, agent.username, "guess", ip=f"10.3.0.{i}").status_code for i in range(1, 7)]
    assert answers == [200, 200, 200, 200, 429, 429]
    assert _login(client, agent.username, PASSWORD, ip="10.3.1.1").status_code == 429
    # other users from those addresses are not locked
    other = UserFactory()
    assert _login(client, other.username, PASSWORD, ip="10.3.0.1").status_code == 302


def test_lockout_ends_after_the_cool_off_even_with_failures_during_it(client, agent, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=3)
    for _ in range(5):
        _login(client, agent.username, "guess")
    locked_at = time.monotonic()
    # keep hammering during the lockout: refused, and not counted
    while time.monotonic() - locked_at < 2.2:
        assert _login(client, agent.username, "guess").status_code == 429
        time.sleep(0.3)
    time.sleep(max(0.0, 3.3 - (time.monotonic() - locked_at)))
    assert _login(client, agent.username, PASSWORD).status_code == 302


def test_good_login_of_an_own_account_does_not_clear_the_address(client):
    """A sprayer with an account of their own cannot wipe their address's count."""
    mine = UserFactory()
    targets = UserFactory.create_batch(6)
    for target in targets[:3]:
        _login(client, target.username, "Summer2026!")
    assert _login(client, mine.username, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    answers = [_login(client, t.username, "Summer2026!").status_code for t in targets[3:]]
    assert answers == [200, 429, 429]


def test_forwarded_for_is_ignored_without_a_declared_proxy(client, agent):
    """Anyone can send X-Forwarded-For: without TRUSTED_PROXY_COUNT it names nobody,
    so rotating it does not dodge the address lockout."""
    users = UserFactory.create_batch(6)
    answers = [_login(client, u.username, "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
               for i, u in enumerate(users)]
    assert answers[-1] == 429


def test_behind_a_declared_proxy_each_client_is_its_own_address(client, settings):
    """Behind one proxy every request comes from the proxy's address: the client's
    is the last X-Forwarded-For entry (what the proxy saw), never one it was sent."""
    settings.TRUSTED_PROXY_COUNT = 1
    users = UserFactory.create_batch(6)
    for u in users[:5]:  # a sprayer at 198.51.100.7, claiming other addresses in the header
        _login(client, u.username, "guess", ip="10.0.0.2",
               HTTP_X_FORWARDED_FOR=f"1.2.3.{u.pk % 250}, 198.51.100.7")
    assert _login(client, users[5].username, PASSWORD, ip="10.0.0.2",
                  HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
    # another client behind the same proxy is not locked out
    assert _login(client, users[5].username, PASSWORD, ip="10.0.0.2",
                  HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302


def test_api_throttle_answers_429_with_retry_after(api_client, agent, settings):
    settings.API_THROTTLE_USER_RATE = "3/min"
    settings.API_THROTTLE_ANON_RATE = "2/min"
    cache.clear()
    api_client.force_authenticate(agent)
    answers = [api_client.get("/api/v1/conversations/") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    assert "throttled" in answers[-1].json()["detail"].lower()
    # Without a login, per address, on what answers without one (the schema).
    api_client.force_authenticate(None)
    anon = [api_client.get("/api/schema/", REMOTE_ADDR="10.7.7.7") for _ in range(3)]
    assert [r.status_code for r in anon] == [200, 200, 429] and "Retry-After" in anon[-1]
    cache.clear()
