"""Each role lands where its work is; a page it may not open explains why, with the nav."""
import pytest
from django.test import Client

from apps.accounts.models import Role

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role, start", [
    (Role.AGENT, "/inbox/"), (Role.SUPERVISOR, "/supervisor/"), (Role.MARKETING, "/reports/"),
    (Role.ADMIN, "/inbox/"),
])
def test_each_role_lands_on_its_own_page_after_login_and_at_the_root(role, start):
    UserFactory(username="pat", role=role)
    client = Client()
    login = client.post("/login/", {"username": "pat", "password": "pw-for-tests"})
    assert login.status_code == 302
    landed = client.get(login["Location"], follow=True)
    assert landed.status_code == 200
    assert landed.redirect_chain[-1][0] == start
    assert client.get("/", follow=True).redirect_chain[-1][0] == start


def test_the_root_sends_a_stranger_to_the_login():
    response = Client().get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/")


def test_marketing_sees_no_inbox_link_and_a_403_page_with_the_reason_and_the_nav():
    user = UserFactory(role=Role.MARKETING)
    client = Client()
    client.force_login(user)
    reports = client.get("/reports/").content.decode()
    assert 'href="/inbox/"' not in reports
    assert 'href="/reports/"' in reports

    denied = client.get("/inbox/")
    assert denied.status_code == 403
    page = denied.content.decode()
    assert "<nav" in page and 'href="/reports/"' in page
    assert "This page is not open to you" in page
    assert "cannot open" in page  # the view's own reason
    assert "Go to your start page" in page


def test_agent_nav_shows_only_pages_the_agent_can_open():
    client = Client()
    client.force_login(UserFactory(role=Role.AGENT))
    page = client.get("/inbox/").content.decode()
    for href in ("/reports/", "/supervisor/", "/routing/", "/connectors/"):
        assert f'href="{href}' not in page
        assert client.get(href).status_code in (403, 404)


def test_a_forbidden_api_call_is_still_json():
    client = Client()
    client.force_login(UserFactory(role=Role.MARKETING))
    response = client.get("/api/v1/conversations/")
    assert response.status_code in (403, 404)
    assert response["Content-Type"].startswith("application/json")
