"""Reddit through the real praw client against the stand-in on 127.0.0.1."""
import pytest

from apps.connectors.providers.base import AuthError, OutboundReply, PermanentError, RateLimited
from apps.connectors.providers.reddit import RedditProvider
from apps.connectors.standins.reddit import RedditStandIn
from apps.inbox.models import Conversation, Message
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reddit(settings):
    with RedditStandIn() as server:
        settings.REDDIT_OAUTH_URL = server.base_url
        settings.REDDIT_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        yield server


@pytest.fixture
def account(reddit):
    return ChannelAccountFactory(provider="reddit", name="Acme on Reddit", handle="u/acme_support",
                                 external_user_id="", credentials={"client_id": "cid", "client_secret": "csecret",
                                                                   "username": "acme_support", "password": "hunter2"})


def _reply(text, to):
    return OutboundReply(text=text, in_reply_to_external_id=to, is_private=False,
                         recipient_external_id="", client_reference="1")


def test_mentions_and_comment_replies_come_from_the_inbox(reddit, account):
    mention = reddit.add_inbox_comment("u/acme_support my router reboots every hour", author="wifi_woes")
    ours = reddit.add_inbox_comment("placeholder", author="other", kind="username_mention")
    reply = reddit.add_inbox_comment("that didn't fix it", author="wifi_woes", kind="comment_reply",
                                     parent_id=ours["name"])
    result = RedditProvider(account).fetch_mentions({})
    by_id = {m.external_id: m for m in result.mentions}
    assert set(by_id) == {mention["name"], ours["name"], reply["name"]}
    m = by_id[mention["name"]]
    assert m.author_handle == "wifi_woes" and m.text.startswith("u/acme_support")
    assert m.thread_id == "t3_1abcde" and m.in_reply_to_external_id == "t3_1abcde"
    assert m.url == f"https://www.reddit.com/r/acmehelp/comments/1abcde/acme_router_keeps_dropping_wifi/{mention['id']}/"
    assert by_id[reply["name"]].in_reply_to_external_id == ours["name"]
    paths = {r["path"] for r in reddit.requests}
    assert {"/api/v1/access_token", "/message/mentions", "/message/comments"} <= paths


def test_next_poll_only_returns_newer_items(reddit, account):
    reddit.add_inbox_comment("first", author="a")
    cursor = RedditProvider(account).fetch_mentions({}).cursor
    newer = reddit.add_inbox_comment("second", author="a")
    assert [m.external_id for m in RedditProvider(account).fetch_mentions(cursor).mentions] == [newer["name"]]


def test_backlog_is_paged_and_resumed(reddit, account, settings):
    settings.POLL_MAX_PAGES = 1
    names = [reddit.add_inbox_comment(f"n{i}", author="a")["name"] for i in range(120)]
    provider = RedditProvider(account)
    first = provider.fetch_mentions({})
    assert len(first.mentions) == 100 and not first.complete
    second = provider.fetch_mentions(first.cursor)
    assert second.complete
    assert {m.external_id for m in first.mentions + second.mentions} == set(names)
    assert provider.fetch_mentions(second.cursor).mentions == []


def test_reply_goes_to_the_comment(reddit, account):
    mention = reddit.add_inbox_comment("u/acme_support help", author="wifi_woes")
    sent = RedditProvider(account).send_reply(_reply("Sorry! Try firmware 2.1.", mention["name"]))
    [posted] = reddit.posted
    assert posted["parent_id"] == mention["name"] and posted["body"] == "Sorry! Try firmware 2.1."
    assert sent.external_id == posted["name"] and sent.url.endswith(f"/{posted['id']}/")
    found = RedditProvider(account).find_sent_reply(_reply("Sorry! Try firmware 2.1.", mention["name"]))
    assert found.external_id == sent.external_id


def test_deleted_comment_is_a_permanent_failure(reddit, account):
    with pytest.raises(PermanentError, match="DELETED_COMMENT"):
        RedditProvider(account).send_reply(_reply("hi", "t1_zzzzzz"))


def test_wrong_password_and_rate_limit_map_to_connector_errors(reddit, account):
    reddit.password = "rotated"
    with pytest.raises(AuthError, match="invalid_grant"):
        RedditProvider(account).fetch_mentions({})
    reddit.password = "hunter2"
    reddit.add_fault("GET", "/message/mentions", status=429, headers={"x-ratelimit-reset": "120"})
    with pytest.raises(RateLimited):
        RedditProvider(account).fetch_mentions({})


def test_a_timed_out_reply_is_not_retried_by_praw(reddit, account, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 1.0
    mention = reddit.add_inbox_comment("u/acme_support hi", author="a")
    reddit.add_fault("POST", "/api/comment", after_handling=True, delay=2.5)
    from apps.connectors.providers.base import UnknownOutcome

    with pytest.raises(UnknownOutcome):
        RedditProvider(account).send_reply(_reply("Hello", mention["name"]))
    assert len(reddit.posted) == 1  # praw did not post it a second time
    assert RedditProvider(account).find_sent_reply(_reply("Hello", mention["name"])) is not None


def test_poll_then_reply_thread_into_one_conversation(reddit, account):
    mention = reddit.add_inbox_comment("u/acme_support wifi down", author="wifi_woes")
    account_poll(account=account)
    conv = Conversation.objects.get(channel_account=account)
    sent = RedditProvider(account).send_reply(_reply("Which model?", mention["name"]))
    Message.objects.create(conversation=conv, channel_account=account, direction="out", text="Which model?",
                           external_id=sent.external_id, sent_at=conv.last_message_at, send_status="sent")
    reddit.add_inbox_comment("AX-3000", author="wifi_woes", kind="comment_reply", parent_id=sent.external_id)
    account_poll(account=account)
    assert Conversation.objects.filter(channel_account=account).count() == 1
    assert conv.messages.filter(direction="in").count() == 2
