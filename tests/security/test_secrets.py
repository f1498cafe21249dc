"""Secrets never leave: not in logs (even at DEBUG, through a poll, a reply and
an auth failure), not in the API, not in the admin."""
import logging

import pytest
from django.urls import reverse

from apps.connectors.models import ChannelAccount
from apps.inbox.models import Conversation
from apps.inbox.sending import message_send
from apps.inbox.services import reply_create
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db

SECRETS = {
    "bearer_token": "AAAAbearer-SECRET-7f3c1e9d2b",
    "consumer_key": "ck-SECRET-4a8b2c6d",
    "consumer_secret": "cs-SECRET-0e1f2a3b4c",
    "access_token": "783214-at-SECRET-5d6e7f8a",
    "access_token_secret": "ats-SECRET-9b0c1d2e",
}


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.fixture
def secret_account(db):
    return ChannelAccountFactory(credentials=dict(SECRETS))


def test_no_secret_in_logs_at_debug_through_poll_reply_and_auth_failure(
        twitter_api, secret_account, agent, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)  # everything the project lets through at LOG_LEVEL=DEBUG
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme hi", author_id="11")
    with django_capture_on_commit_callbacks():
        account_poll(account=secret_account)
    conv = Conversation.objects.get()
    assert conv.messages.get().external_id == tweet["id"]
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice hello")
    assert message_send(message_id=msg.pk).send_status == "sent"  # signed with OAuth 1.0a user auth
    twitter_api.add_fault("GET", "/2/users/", status=401)
    with pytest.raises(Exception):
        account_poll(account=ChannelAccount.objects.get(pk=secret_account.pk))

    sent_headers = " ".join(str(r["headers"]) for r in twitter_api.requests)
    assert SECRETS["bearer_token"] in sent_headers  # the secrets were really used...
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # ...and DEBUG really logged
    assert _leaks(caplog.text) == []
    for record in caplog.records:
        assert _leaks(record.getMessage()) == [], record.name
    account = ChannelAccount.objects.get(pk=secret_account.pk)
    assert account.last_error and _leaks(account.last_error) == []


def test_channel_account_api_never_returns_credentials(api_client, admin_user, secret_account):
    api_client.force_authenticate(admin_user)
    bodies = [
        api_client.get("/api/v1/channel-accounts/"),
        api_client.get(f"/api/v1/channel-accounts/{secret_account.pk}/"),
        api_client.patch(f"/api/v1/channel-accounts/{secret_account.pk}/",
                         {"credentials": {**SECRETS, "bearer_token": SECRETS["bearer_token"]}}, format="json"),
        api_client.post("/api/v1/channel-accounts/", {
            "provider": "twitter", "name": "Second", "handle": "@second", "external_user_id": "1",
            "credentials": SECRETS}, format="json"),
        api_client.get("/api/schema/"),
    ]
    for resp in bodies:
        assert resp.status_code < 400, resp.content[:300]
        text = resp.content.decode()
        assert _leaks(text) == [], (resp.request["PATH_INFO"], _leaks(text))
        assert '"credentials"' not in text or "writeOnly" in text or resp.request["PATH_INFO"].endswith("schema/")
    created = ChannelAccount.objects.get(handle="@second")
    assert created.credentials == SECRETS  # stored (encrypted), just never shown


def test_admin_page_never_shows_credentials(client, admin_user, secret_account):
    client.force_login(admin_user)
    page = client.get(reverse("admin:connectors_channelaccount_change", args=[secret_account.pk]))
    assert page.status_code == 200
    assert _leaks(page.content.decode()) == []
    listing = client.get(reverse("admin:connectors_channelaccount_changelist"))
    assert _leaks(listing.content.decode()) == []
