"""The Channels pages (docs/connectors.md, "Connecting a network"): a form per network whose
fields become exactly the credential keys its provider reads, stored encrypted; Test connection
with the real client against the stand-in servers (no mocks); the webhook URL and secrets;
edit, pause, resume, audited; admins only; hostile values refused with a clear message."""
from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.accounts.models import AuditEntry
from apps.connectors.models import ChannelAccount
from apps.connectors.standins.bluesky import BlueskyStandIn
from apps.connectors.standins.imap import ImapStandIn
from apps.connectors.standins.mastodon import MastodonStandIn
from apps.connectors.standins.reddit import RedditStandIn
from apps.core.fields import decrypt_value
from tests.factories import ChannelAccountFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

X_KEYS = {"bearer_token": "AAAAAAAAAAAAAAAAAAAAAbearer-token-1234567890", "consumer_key": "ck-api-key-0001",
          "consumer_secret": "cs-api-secret-0000000000000000002", "access_token": "783214-access-token-3333333333",
          "access_token_secret": "ats-access-secret-00000000000004"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin(admin_user):
    return _client(admin_user)


def _raw_credentials(account_id: int) -> str:
    """What the database holds, read past the model field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT credentials FROM {ChannelAccount._meta.db_table} WHERE id = %s", [account_id])
        return cursor.fetchone()[0]


def _assert_encrypted(account: ChannelAccount, expected: dict) -> None:
    raw = _raw_credentials(account.pk)
    for value in expected.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in raw
    assert decrypt_value(raw) == expected


def _new(client, provider, data, action="save"):
    return client.post(reverse("connectors:channel_new", args=[provider]), {**data, "action": action})


# --- each network's form: fields -> the provider's credential keys, encrypted ----------------------

def test_x_form_stores_the_five_keys_tweepy_reads_encrypted(admin, twitter_api):
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "acme", "external_user_id": "783214", **X_KEYS})
    account = ChannelAccount.objects.get(provider="twitter")
    assert resp.status_code == 302 and resp["Location"] == reverse("connectors:channel_detail", args=[account.pk])
    assert (account.name, account.handle, account.external_user_id, account.is_active) == (
        "Acme on X", "@acme", "783214", True)
    _assert_encrypted(account, X_KEYS)
    entry = AuditEntry.objects.get(action="channel.connected")
    assert entry.data["credential_keys"] == sorted(X_KEYS)
    assert not any(v in json.dumps(entry.data) for v in X_KEYS.values())


def test_x_user_id_left_empty_is_looked_up_with_the_bearer_token(admin, twitter_api):
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", "bearer_token": "bearer-only-token"})
    assert resp.status_code == 302
    account = ChannelAccount.objects.get(provider="twitter")
    assert account.external_user_id == twitter_api.brand_id
    assert account.credentials == {"bearer_token": "bearer-only-token"}


def test_x_half_of_the_user_keys_is_refused_with_what_is_missing(admin):
    resp = _new(admin, "twitter", {"name": "Acme", "handle": "acme", "external_user_id": "1",
                                   "consumer_key": "ck-only-key-000001"})
    assert resp.status_code == 400
    assert "API key secret, Access token, Access token secret missing" in resp.content.decode()
    assert not ChannelAccount.objects.exists()


def test_mastodon_form_stores_the_access_token_and_the_instance(admin):
    resp = _new(admin, "mastodon", {"name": "Acme on Mastodon", "api_base_url": "https://mastodon.social/",
                                    "handle": "acme", "access_token": "mastodon-token-0000000000001"})
    assert resp.status_code == 302
    account = ChannelAccount.objects.get(provider="mastodon")
    assert (account.api_base_url, account.handle) == ("https://mastodon.social", "@acme@mastodon.social")
    _assert_encrypted(account, {"access_token": "mastodon-token-0000000000001"})


def test_bluesky_form_stores_identifier_and_app_password(admin):
    resp = _new(admin, "bluesky", {"name": "Acme on Bluesky", "handle": "@Acme.bsky.social",
                                   "app_password": "abcd-efgh-ijkl-mnop"})
    assert resp.status_code == 302
    account = ChannelAccount.objects.get(provider="bluesky")
    assert (account.handle, account.api_base_url) == ("acme.bsky.social", "")
    _assert_encrypted(account, {"identifier": "acme.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"})


def test_reddit_form_stores_the_script_app_keys(admin):
    resp = _new(admin, "reddit", {"name": "Acme on Reddit", "handle": "u/acme_support", "password": "hunter 2",
                                  "client_id": "cid-abc", "client_secret": "csecret-xyz"})
    assert resp.status_code == 302
    account = ChannelAccount.objects.get(provider="reddit")
    assert account.handle == "u/acme_support"
    _assert_encrypted(account, {"username": "acme_support", "password": "hunter 2", "client_id": "cid-abc",
                                "client_secret": "csecret-xyz"})


def test_email_form_stores_imap_and_smtp_keys_and_leaves_optional_ones_to_the_defaults(admin):
    resp = _new(admin, "email", {"name": "Support mail", "handle": "Support@Acme.example",
                                 "username": "support@acme.example", "password": "imap-pass", "imap_host": "imap.acme.example",
                                 "imap_port": "993", "imap_ssl": "on", "folder": "INBOX",
                                 "smtp_host": "smtp.acme.example", "smtp_port": "587", "smtp_security": "starttls",
                                 "smtp_username": "", "smtp_password": ""})
    assert resp.status_code == 302
    account = ChannelAccount.objects.get(provider="email")
    assert account.handle == "support@acme.example"
    # no smtp_username/smtp_password keys: the provider then signs in to SMTP with the IMAP ones
    _assert_encrypted(account, {"username": "support@acme.example", "password": "imap-pass",
                                "imap_host": "imap.acme.example", "imap_port": 993, "imap_ssl": True,
                                "folder": "INBOX", "smtp_host": "smtp.acme.example", "smtp_port": 587,
                                "smtp_security": "starttls"})


def test_webhook_needs_only_a_name_and_shows_url_and_secrets_once(admin, settings):
    settings.SITE_URL = "https://care.acme.example"
    resp = _new(admin, "webhook", {"name": "Chat widget"})
    assert resp.status_code == 200
    account = ChannelAccount.objects.get(provider="webhook")
    page = resp.content.decode()
    assert account.handle == "chat-widget" and account.credentials == {}
    assert f"https://care.acme.example/hooks/webhook/{account.pk}/" in page
    secrets = account.hook_secrets
    assert secrets["inbound_token"] in page and secrets["signing_secret"] in page
    assert "shown this once" in page
    later = admin.get(reverse("connectors:channel_detail", args=[account.pk])).content.decode()
    assert f"https://care.acme.example/hooks/webhook/{account.pk}/" in later
    assert secrets["inbound_token"] not in later and secrets["signing_secret"] not in later
    assert f"…{secrets['inbound_token'][-4:]}" in later


def test_x_detail_shows_the_account_activity_webhook_url(admin, settings):
    settings.SITE_URL = "https://care.acme.example/"
    account = ChannelAccountFactory(credentials=dict(X_KEYS))
    page = admin.get(reverse("connectors:channel_detail", args=[account.pk])).content.decode()
    assert f"https://care.acme.example/hooks/twitter/{account.pk}/" in page
    assert "API key secret" in page
    for value in X_KEYS.values():
        assert value not in page
    assert "ends in …" in page


# --- Test connection: the real clients against the stand-ins --------------------------------------

def test_x_test_connection_signs_in_and_fills_the_user_id(admin, twitter_api):
    twitter_api.bearer_tokens = {"good-bearer-token"}
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", "bearer_token": "good-bearer-token"},
                action="test")
    page = resp.content.decode()
    assert resp.status_code == 200 and 'data-test-result="ok"' in page
    assert "Connected to Twitter / X" in page and "@acme (user id 783214)" in page
    assert 'value="783214"' in page  # filled in for the save
    assert not ChannelAccount.objects.exists()  # a test saves nothing
    assert any(r["path"] == "/2/users/by/username/acme" for r in twitter_api.requests)


def test_x_test_connection_with_user_keys_asks_who_they_act_for(admin, twitter_api):
    twitter_api.consumer_keys = {X_KEYS["consumer_key"]}
    keys = {k: v for k, v in X_KEYS.items() if k != "bearer_token"}
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", **keys}, action="test")
    assert 'data-test-result="ok"' in resp.content.decode()
    assert twitter_api.requests[-1]["path"] == "/2/users/me"
    assert twitter_api.requests[-1]["headers"]["Authorization"].startswith("OAuth ")


def test_x_test_connection_401_says_the_credentials_were_refused(admin, twitter_api):
    twitter_api.bearer_tokens = {"the-right-token"}
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", "external_user_id": "783214",
                                   "bearer_token": "a-revoked-token"}, action="test")
    page = resp.content.decode()
    assert 'data-test-result="failed"' in page
    assert "Twitter / X refused these credentials" in page
    assert "(401)" in page  # the network's own words beside them
    assert not ChannelAccount.objects.exists()


def test_x_save_without_user_id_and_refused_credentials_is_not_saved(admin, twitter_api):
    twitter_api.bearer_tokens = {"the-right-token"}
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", "bearer_token": "wrong-token"})
    assert resp.status_code == 400
    assert "Enter the user id, or credentials that can look it up" in resp.content.decode()
    assert not ChannelAccount.objects.exists()


def test_x_test_connection_timeout_is_said_plainly(admin, twitter_api, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    twitter_api.add_fault("GET", "/2/users/", status=200, delay=1.5)
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@acme", "bearer_token": "t"}, action="test")
    assert "did not answer in time (within 0.5 s at http://127.0.0.1:" in resp.content.decode()


def test_x_test_connection_unknown_handle(admin, twitter_api):
    resp = _new(admin, "twitter", {"name": "Acme on X", "handle": "@nobody_here", "bearer_token": "t"},
                action="test")
    page = resp.content.decode()
    assert "Twitter / X refused the request" in page and "Could not find user with username: [nobody_here]" in page


def test_test_button_of_a_saved_account_uses_the_stored_credentials(admin, twitter_api):
    twitter_api.bearer_tokens = {"stored-bearer"}
    account = ChannelAccountFactory(handle="@acme", credentials={"bearer_token": "stored-bearer"})
    resp = admin.post(reverse("connectors:channel_test", args=[account.pk]), follow=True)
    assert "Connected to Twitter / X" in resp.content.decode()
    ChannelAccount.objects.filter(pk=account.pk).update(credentials={"bearer_token": "revoked"})
    resp = admin.post(reverse("connectors:channel_test", args=[account.pk]), follow=True)
    assert "refused these credentials" in resp.content.decode()


def test_mastodon_test_connection_success_and_refused_token(admin, settings):
    with MastodonStandIn() as server:
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        data = {"name": "Acme", "api_base_url": server.base_url, "handle": "@acme@mastodon.example"}
        page = _new(admin, "mastodon", {**data, "access_token": "mastodon-token"}, action="test").content.decode()
        assert 'data-test-result="ok"' in page and "Signed in as @acme@" in page
        page = _new(admin, "mastodon", {**data, "access_token": "revoked-token"}, action="test").content.decode()
        assert "Mastodon refused these credentials" in page and "The access token is invalid" in page


def test_bluesky_test_connection_with_the_app_password(admin, settings):
    with BlueskyStandIn() as server:
        settings.BLUESKY_API_BASE_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        data = {"name": "Acme", "handle": "acme.bsky.social"}
        page = _new(admin, "bluesky", {**data, "app_password": "app-pass-1234"}, action="test").content.decode()
        assert 'data-test-result="ok"' in page and "Signed in as @acme.bsky.social" in page
        page = _new(admin, "bluesky", {**data, "app_password": "wrong-pass-0000"}, action="test").content.decode()
        assert "Bluesky refused these credentials" in page


def test_reddit_test_connection_signs_in_as_the_script_app(admin, settings):
    with RedditStandIn() as server:
        settings.REDDIT_OAUTH_URL = settings.REDDIT_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        data = {"name": "Acme", "handle": "acme_support", "client_id": "cid", "client_secret": "csecret"}
        page = _new(admin, "reddit", {**data, "password": "hunter2"}, action="test").content.decode()
        assert 'data-test-result="ok"' in page and "Signed in as u/acme_support" in page
        page = _new(admin, "reddit", {**data, "password": "wrong"}, action="test").content.decode()
        assert "Reddit refused these credentials" in page and "invalid_grant" in page


def test_email_test_connection_signs_in_to_imap(admin, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 3.0
    with ImapStandIn() as server:
        data = {"name": "Support", "handle": "support@acme.example", "username": "support@acme.example",
                "imap_host": "127.0.0.1", "imap_port": str(server.port), "folder": "INBOX",
                "smtp_security": "starttls"}
        page = _new(admin, "email", {**data, "password": "imap-pass"}, action="test").content.decode()
        assert 'data-test-result="ok"' in page and "IMAP: signed in, INBOX holds 0 messages" in page
        page = _new(admin, "email", {**data, "password": "wrong"}, action="test").content.decode()
        assert "Email refused these credentials" in page


def test_unreachable_instance_is_said_plainly(admin, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 1.0
    page = _new(admin, "mastodon", {"name": "Acme", "api_base_url": "http://127.0.0.1:9", "handle": "@a@b.example",
                                    "access_token": "t"}, action="test").content.decode()
    assert "Could not reach Mastodon at http://127.0.0.1:9" in page


# --- edit, pause, resume, secrets: audited; stored secrets never shown ----------------------------

def test_edit_keeps_empty_secrets_replaces_typed_ones_and_audits_the_key_names(admin):
    account = ChannelAccountFactory(credentials=dict(X_KEYS))
    url = reverse("connectors:channel_edit", args=[account.pk])
    page = admin.get(url).content.decode()
    for value in X_KEYS.values():
        assert value not in page
    assert "Stored: set · ends in …3333; leave empty to keep it." in page
    resp = admin.post(url, {"name": "Acme X", "handle": account.handle, "external_user_id": "783214",
                            "access_token": "783214-new-access-token-999999", "action": "save"})
    assert resp.status_code == 302
    account.refresh_from_db()
    assert account.name == "Acme X"
    assert account.credentials == {**X_KEYS, "access_token": "783214-new-access-token-999999"}
    entry = AuditEntry.objects.get(action="channel.updated")
    assert entry.data["changed"] == ["name", "credentials: access_token"]
    assert "new-access-token" not in json.dumps(entry.data)


def test_pause_asks_first_then_pauses_and_resume_resumes(admin):
    account = ChannelAccountFactory()
    url = reverse("connectors:channel_disable", args=[account.pk])
    page = admin.get(url).content.decode()
    assert "Pause" in page and "push deliveries to its webhook URL are refused" in page
    assert admin.post(url, {}).status_code == 400  # the box not ticked
    account.refresh_from_db()
    assert account.is_active
    assert admin.post(url, {"confirm": "on"}).status_code == 302
    account.refresh_from_db()
    assert not account.is_active
    admin.post(reverse("connectors:channel_enable", args=[account.pk]))
    account.refresh_from_db()
    assert account.is_active
    assert list(AuditEntry.objects.filter(action__startswith="channel.").order_by("id")
                .values_list("action", flat=True)) == ["channel.disabled", "channel.enabled"]


def test_replacing_webhook_secrets_asks_first_and_shows_the_new_ones_once(admin):
    account = ChannelAccountFactory(provider="webhook", handle="widget", credentials={},
                                    hook_secrets={"inbound_token": "old-token", "signing_secret": "old-secret"})
    url = reverse("connectors:channel_secrets", args=[account.pk])
    assert admin.post(url, {}).status_code == 400
    account.refresh_from_db()
    assert account.hook_secrets["inbound_token"] == "old-token"
    page = admin.post(url, {"confirm": "on"}).content.decode()
    account.refresh_from_db()
    assert account.hook_secrets["inbound_token"] != "old-token"
    assert account.hook_secrets["inbound_token"] in page
    assert AuditEntry.objects.filter(action="channel.secrets_rotated").count() == 1


def test_list_shows_each_account_with_its_health_and_the_connect_button(admin):
    ChannelAccountFactory(name="Acme on X", consecutive_errors=3, last_error="Twitter refused the credentials (401)")
    page = admin.get(reverse("connectors:channels")).content.decode()
    assert "Connect a network" in page and "Acme on X" in page
    assert "Failing (3 in a row)" in page and "Twitter refused the credentials (401)" in page
    chooser = admin.get(reverse("connectors:channel_connect")).content.decode()
    for provider in ("twitter", "mastodon", "bluesky", "reddit", "email", "webhook"):
        assert reverse("connectors:channel_new", args=[provider]) in chooser


def test_every_network_form_says_where_to_find_its_values(admin):
    expectations = {"twitter": "Keys and tokens", "mastodon": "Preferences &gt; Development",
                    "bluesky": "App passwords", "reddit": "reddit.com/prefs/apps", "email": "IMAP server",
                    "webhook": "Reply URL"}
    for provider, words in expectations.items():
        resp = admin.get(reverse("connectors:channel_new", args=[provider]))
        assert resp.status_code == 200 and words in resp.content.decode(), provider
    assert admin.get("/connectors/channels/connect/myspace/").status_code == 404


# --- hostile input ------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("name", "<script>alert(1)</script>", "The name cannot contain &lt; or &gt;"),
    ("name", "x" * 5000, "at most 100 characters"),
    ("name", "Acme\nsecond line", "cannot contain control characters"),
    ("api_base_url", "javascript:alert(1)", "must be a web address starting with https://"),
    ("api_base_url", "not a url", "must be a web address starting with https://"),
    ("api_base_url", "http://mastodon.social", "must use https://"),
    ("api_base_url", "https://user:pw@mastodon.social", "cannot carry a user name or password"),
    ("api_base_url", "https://mastodon.social/@acme", "enter only the server&#x27;s address"),
    ("api_base_url", "https://" + "a" * 400 + ".example", "at most 300 characters"),
    ("access_token", "t" * 10000, "at most 500 characters"),
    ("access_token", "two words", "cannot contain spaces"),
    ("handle", "@<b>acme</b>", "cannot contain &lt; or &gt;"),
])
def test_hostile_values_are_refused_with_a_clear_message(admin, field, value, message):
    data = {"name": "Acme", "api_base_url": "https://mastodon.social", "handle": "@acme@mastodon.social",
            "access_token": "token-0000000000000000", field: value}
    resp = _new(admin, "mastodon", data)
    assert resp.status_code == 400
    page = resp.content.decode()
    assert message in page
    assert "<script>alert(1)</script>" not in page and "<b>acme</b>" not in page
    assert not ChannelAccount.objects.exists()


def test_webhook_reply_url_javascript_is_refused(admin):
    resp = _new(admin, "webhook", {"name": "Widget", "api_base_url": "javascript:alert(document.cookie)"})
    assert resp.status_code == 400 and "The reply URL must be a web address" in resp.content.decode()
    assert not ChannelAccount.objects.exists()


def test_the_same_handle_twice_is_refused(admin):
    ChannelAccountFactory(handle="@acme")
    resp = _new(admin, "twitter", {"name": "Again", "handle": "ACME", "external_user_id": "1", "bearer_token": "b"})
    assert resp.status_code == 400 and "@ACME is already connected" in resp.content.decode()


def test_forms_need_the_csrf_token(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    resp = client.post(reverse("connectors:channel_new", args=["webhook"]), {"name": "Widget"})
    assert resp.status_code == 403
    assert not ChannelAccount.objects.exists()


# --- who may -----------------------------------------------------------------------------------

def _urls(account) -> list[tuple[str, str]]:
    pk = account.pk
    return [("GET", reverse("connectors:channels")), ("GET", reverse("connectors:channel_connect")),
            ("GET", reverse("connectors:channel_new", args=["twitter"])),
            ("POST", reverse("connectors:channel_new", args=["webhook"])),
            ("GET", reverse("connectors:channel_detail", args=[pk])),
            ("GET", reverse("connectors:channel_edit", args=[pk])),
            ("POST", reverse("connectors:channel_edit", args=[pk])),
            ("POST", reverse("connectors:channel_test", args=[pk])),
            ("POST", reverse("connectors:channel_disable", args=[pk])),
            ("POST", reverse("connectors:channel_enable", args=[pk])),
            ("POST", reverse("connectors:channel_secrets", args=[pk])),
            ("POST", reverse("connectors:channel_surveys", args=[pk]))]


@pytest.mark.parametrize("who", ["agent", "marketing", "supervisor", "other_supervisor"])
def test_only_admins_may_open_the_channels_pages(who, agent, supervisor, marketing_user):
    other = UserFactory(role="supervisor")
    TeamFactory().leads.add(other)
    user = {"agent": agent, "marketing": marketing_user, "supervisor": supervisor, "other_supervisor": other}[who]
    account = ChannelAccountFactory(credentials=dict(X_KEYS))
    client = _client(user)
    for method, url in _urls(account):
        resp = client.get(url) if method == "GET" else client.post(url, {"name": "x", "confirm": "on"})
        assert resp.status_code == 403, (who, method, url)
        assert X_KEYS["bearer_token"] not in resp.content.decode()
    account.refresh_from_db()
    assert account.is_active and account.name == "Acme on X"
    assert not ChannelAccount.objects.filter(provider="webhook").exists()
    assert ">Channels</a>" not in client.get(reverse("connectors:health") if who.endswith("supervisor")
                                             else reverse("accounts:profile")).content.decode()


def test_anonymous_is_sent_to_login_and_admin_sees_the_nav_link(admin, twitter_account):
    resp = Client().get(reverse("connectors:channels"))
    assert resp.status_code == 302 and "/login/" in resp["Location"]
    assert ">Channels</a>" in admin.get(reverse("accounts:profile")).content.decode()


@pytest.mark.parametrize("provider", ["twitter", "mastodon", "bluesky", "reddit", "email", "webhook", "demo"])
@pytest.mark.parametrize("value", ["a\x00b", "a\x7fb", "x" * 100_000, "<script>alert(1)</script>"])
def test_every_field_of_every_network_takes_hostile_values_without_a_500(admin, provider, value):
    """A form error (400), never a 500; markup never echoed raw; nothing stored with markup or a
    control character (the request middleware already drops NUL: "a\\x00b" may arrive as "ab")."""
    from apps.connectors.forms import NETWORK_FORMS

    for field in NETWORK_FORMS[provider].base_fields:
        resp = _new(admin, provider, {field: value})
        assert resp.status_code in (200, 302, 400), (provider, field, resp.status_code)
        assert "<script>alert(1)</script>" not in resp.content.decode()
    for account in ChannelAccount.objects.all():
        for text in (account.name, account.handle, account.api_base_url):
            assert "<" not in text and "\x00" not in text and "\x7f" not in text and len(text) <= 300
