"""Per-user API tokens: created (key shown once, stored hashed), used, revoked (401 after)."""
import pytest
from django.urls import reverse

from apps.accounts.models import ApiToken, AuditEntry, token_hash

pytestmark = pytest.mark.django_db


def test_token_created_on_the_page_works_for_the_api_until_revoked(client, api_client, agent, queue):
    client.force_login(agent)
    page = client.post(reverse("accounts:tokens"), {"name": "CRM sync"})
    key = page.context["new_key"]
    assert key and key in page.content.decode()
    token = ApiToken.objects.get(user=agent)
    assert token.key_hash == token_hash(key) and key not in (token.key_hash, token.prefix + "x")
    assert key not in client.get(reverse("accounts:tokens")).content.decode()  # shown once
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/v1/conversations/").status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/v1/users/me/").json()["username"] == agent.username
    token.refresh_from_db()
    assert token.last_used_at is not None
    client.post(reverse("accounts:token-revoke", args=[token.pk]))
    resp = api_client.get("/api/v1/conversations/")
    assert resp.status_code == 401 and resp.json() == {"detail": "This token was revoked."}
    assert [e.action for e in AuditEntry.objects.filter(action__startswith="token.").order_by("id")] == [
        "token.created", "token.revoked"]


def test_token_api_create_list_revoke_and_others_tokens_are_404(api_client, agent, supervisor):
    api_client.force_authenticate(agent)
    created = api_client.post("/api/v1/tokens/", {"name": "script"}, format="json")
    assert created.status_code == 201 and len(created.json()["key"]) >= 40
    listed = api_client.get("/api/v1/tokens/").json()
    assert [t["name"] for t in listed] == ["script"] and "key" not in listed[0]
    api_client.force_authenticate(supervisor)
    assert api_client.delete(f"/api/v1/tokens/{created.json()['id']}/").status_code == 404
    api_client.force_authenticate(agent)
    assert api_client.delete(f"/api/v1/tokens/{created.json()['id']}/").status_code == 204
    assert api_client.get("/api/v1/tokens/").json()[0]["active"] is False


def test_unknown_token_is_401_and_drf_legacy_token_still_works(api_client, agent):
    from rest_framework.authtoken.models import Token

    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api_client.get("/api/v1/users/me/").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api_client.get("/api/v1/users/me/").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent).key}")
    assert api_client.get("/api/v1/users/me/").status_code == 200


def test_token_of_a_deactivated_user_stops_working(api_client, agent):
    from apps.accounts.services import api_token_create

    _, key = api_token_create(user=agent, name="x")
    agent.is_active = False
    agent.save()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/v1/users/me/").status_code == 401


def test_marketing_token_cannot_reach_conversations(api_client, marketing_user):
    from apps.accounts.services import api_token_create

    _, key = api_token_create(user=marketing_user, name="dash")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/v1/conversations/").status_code == 403
    assert api_client.get("/api/v1/customers/").status_code == 403
