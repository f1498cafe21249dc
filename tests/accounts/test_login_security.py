"""Login rate limiting (django-axes), sessions and CSRF as Django does them."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _login(client, username, password, ip="10.9.9.9"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sixth_attempt_refused_even_with_the_right_password(client, agent):
    answers = [_login(client, agent.username, "wrong-password").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # the form again, then the lockout at the 5th failure
    resp = _login(client, agent.username, "pw-for-tests")
    assert resp.status_code == 429  # axes: locked out
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("inbox:list")).status_code == 302  # still not signed in
    # the address is locked too (5 failures from it, issue 18); another user from
    # another address is not locked out by this one
    from tests.factories import UserFactory

    other = UserFactory()
    assert _login(client, other.username, "pw-for-tests").status_code == 429
    assert _login(client, other.username, "pw-for-tests", ip="10.9.9.10").status_code == 302


def test_good_login_resets_the_failure_count(client, agent):
    for _ in range(4):
        _login(client, agent.username, "nope")
    assert _login(client, agent.username, "pw-for-tests").status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        _login(client, agent.username, "nope")
    assert _login(client, agent.username, "pw-for-tests").status_code == 302


def test_forms_and_session_api_need_the_csrf_token_but_token_auth_does_not(agent):
    from django.test import Client

    from apps.accounts.services import api_token_create

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.post(reverse("accounts:presence"), {"presence": "away"}).status_code == 403
    assert browser.post("/api/v1/users/me/presence/", {"presence": "away"},
                        content_type="application/json").status_code == 403
    page = browser.get(reverse("accounts:profile"))
    token = page.context["csrf_token"]
    assert browser.post(reverse("accounts:presence"), {"presence": "away", "csrfmiddlewaretoken": str(token)}
                        ).status_code == 302
    _, key = api_token_create(user=agent, name="script")
    script = Client(enforce_csrf_checks=True)
    resp = script.post("/api/v1/users/me/presence/", {"presence": "online"}, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Token {key}")
    assert resp.status_code == 200


def test_session_cookie_is_http_only_and_login_rotates_the_session(client, agent):
    client.get(reverse("login"))
    before = client.cookies.get("sessionid")
    resp = _login(client, agent.username, "pw-for-tests")
    cookie = resp.cookies["sessionid"]
    assert cookie["httponly"] and (before is None or cookie.value != before.value)
