"""Content-Security-Policy on every page: scripts only from our static files or
inline with the response's nonce, no inline event handlers, nothing framed, and
images never from javascript:. (A `javascript:` URL that slipped into a page
would not run.) HSTS: tests/deploy (production settings, real HTTP)."""
import re

import pytest
from django.urls import reverse

from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def _inline_scripts_carry_the_nonce(response):
    html = response.content.decode()
    policy = _policy(response)
    nonces = [v[len("'nonce-"):-1] for v in policy["script-src"] if v.startswith("'nonce-")]
    for tag in re.findall(r"<script\b[^>]*>", html):
        if "src=" in tag or 'type="application/json"' in tag:
            continue
        assert nonces and f'nonce="{nonces[0]}"' in tag, f"inline script without the nonce: {tag}"
    handlers = re.findall(r"<[a-z]+\b[^>]*\s(on[a-z]+)=", html)
    assert not handlers, f"inline event handlers are blocked by the CSP: {handlers}"


def test_login_page_has_the_policy(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "javascript:" not in " ".join(policy["img-src"])
    _inline_scripts_carry_the_nonce(response)


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_pages_with_scripts_carry_the_nonce(client, role, agent, supervisor, admin_user, queue):
    user = {"agent": agent, "supervisor": supervisor, "admin": admin_user}[role]
    conversation = ConversationFactory(queue=queue, assignee=agent)
    client.force_login(user)
    paths = [reverse("inbox:list"), reverse("inbox:detail", args=[conversation.pk]), "/api/docs/"]
    if role != "agent":
        paths += ["/supervisor/", "/supervisor/reassign/", "/reports/", "/reports/service/"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        _inline_scripts_carry_the_nonce(response)


def test_api_docs_script_is_a_file_not_inline(client, agent):
    client.force_login(agent)
    page = client.get("/api/docs/").content.decode()
    script = re.search(r'<script src="([^"]*script=[^"]*)"', page).group(1).replace("&amp;", "&")
    response = client.get(script)
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()
