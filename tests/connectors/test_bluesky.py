"""Bluesky through the real atproto SDK against the stand-in PDS on 127.0.0.1."""
import pytest
from django.core.cache import cache

from apps.connectors.providers.base import AuthError, OutboundReply, PermanentError
from apps.connectors.providers.bluesky import BlueskyProvider
from apps.connectors.standins.bluesky import BlueskyStandIn
from apps.inbox.models import Conversation
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bluesky(settings):
    with BlueskyStandIn() as server:
        settings.BLUESKY_API_BASE_URL = server.base_url
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        cache.clear()
        yield server


@pytest.fixture
def account(bluesky):
    return ChannelAccountFactory(provider="bluesky", name="Acme on Bluesky", handle="@acme.bsky.social",
                                 external_user_id=bluesky.brand["did"],
                                 credentials={"identifier": "acme.bsky.social", "app_password": "app-pass-1234"})


def _refs(record):
    """root/parent strong refs as {uri, cid} (the SDK adds their $type)."""
    return {k: {"uri": v["uri"], "cid": v["cid"]} for k, v in record["reply"].items() if k in ("root", "parent")}


def _reply(text, to, private=False):
    return OutboundReply(text=text, in_reply_to_external_id=to, is_private=private,
                         recipient_external_id="", client_reference="1")


def test_mentions_and_replies_are_fetched_not_likes(bluesky, account):
    alice = bluesky.add_actor("alice.bsky.social", "Alice")
    mention = bluesky.add_post("@acme.bsky.social my parcel is lost", author=alice)
    bluesky.add_like(alice, mention["uri"])
    result = BlueskyProvider(account).fetch_mentions({})
    assert [m.external_id for m in result.mentions] == [mention["uri"]]
    m = result.mentions[0]
    assert m.author_handle == "alice.bsky.social" and m.author_name == "Alice"
    assert m.thread_id == mention["uri"] and m.in_reply_to_external_id == ""
    assert m.url == f"https://bsky.app/profile/alice.bsky.social/post/{mention['uri'].rsplit('/', 1)[1]}"
    listing = next(r for r in bluesky.requests if r["path"].endswith("listNotifications"))
    assert set(listing["query"]["reasons"]) == {"mention", "reply", "quote"}
    assert result.cursor == {"seen_until": mention["indexedAt"], "seen_uris": [mention["uri"]]}


def test_next_poll_only_returns_newer_and_reuses_the_session(bluesky, account):
    alice = bluesky.add_actor("alice.bsky.social")
    bluesky.add_post("first", author=alice)
    cursor = BlueskyProvider(account).fetch_mentions({}).cursor
    second = bluesky.add_post("second", author=alice)
    again = BlueskyProvider(account).fetch_mentions(cursor)
    assert [m.external_id for m in again.mentions] == [second["uri"]]
    # createSession is rate limited: the second provider reused the cached session
    assert bluesky.sessions_created == 1


def test_backlog_is_paged_and_resumed(bluesky, account, settings):
    settings.POLL_MAX_PAGES = 1
    alice = bluesky.add_actor("alice.bsky.social")
    uris = [bluesky.add_post(f"n{i}", author=alice)["uri"] for i in range(130)]
    provider = BlueskyProvider(account)
    first = provider.fetch_mentions({})
    assert len(first.mentions) == 100 and not first.complete
    second = provider.fetch_mentions(first.cursor)
    assert second.complete
    assert {m.external_id for m in first.mentions + second.mentions} == set(uris)


def test_reply_deep_in_a_thread_references_root_and_parent(bluesky, account):
    alice = bluesky.add_actor("alice.bsky.social")
    root = bluesky.add_post("@acme.bsky.social app crashes", author=alice)
    ours = bluesky._post(bluesky.brand, "Which version?", root["uri"])
    deeper = bluesky.add_post("3.2.1 on iOS", author=alice, reply_to=ours["uri"], reason="reply")
    mention = [m for m in BlueskyProvider(account).fetch_mentions({}).mentions if m.external_id == deeper["uri"]][0]
    assert mention.thread_id == root["uri"] and mention.in_reply_to_external_id == ours["uri"]

    sent = BlueskyProvider(account).send_reply(_reply("Thanks, fixed in 3.2.2", deeper["uri"]))
    [created] = bluesky.replies_to(deeper["uri"])
    assert _refs(created["record"]) == {
        "root": {"uri": root["uri"], "cid": root["cid"]},
        "parent": {"uri": deeper["uri"], "cid": deeper["cid"]},
    }
    assert created["record"]["text"] == "Thanks, fixed in 3.2.2"
    assert sent.external_id == created["uri"] and sent.url.startswith("https://bsky.app/profile/acme.bsky.social/post/")
    found = BlueskyProvider(account).find_sent_reply(_reply("Thanks, fixed in 3.2.2", deeper["uri"]))
    assert found.external_id == sent.external_id


def test_reply_to_a_top_level_post_uses_it_as_root(bluesky, account):
    alice = bluesky.add_actor("alice.bsky.social")
    root = bluesky.add_post("@acme.bsky.social hello", author=alice)
    BlueskyProvider(account).send_reply(_reply("Hi Alice!", root["uri"]))
    [created] = bluesky.replies_to(root["uri"])
    ref = {"uri": root["uri"], "cid": root["cid"]}
    assert _refs(created["record"]) == {"root": ref, "parent": ref}


def test_deleted_parent_and_direct_messages_are_refused(bluesky, account):
    with pytest.raises(PermanentError, match="deleted"):
        BlueskyProvider(account).send_reply(_reply("hi", "at://did:plc:x/app.bsky.feed.post/gone"))
    with pytest.raises(PermanentError, match="direct"):
        BlueskyProvider(account).send_reply(_reply("hi", "", private=True))


def test_revoked_app_password_is_an_auth_error(bluesky, account):
    bluesky.passwords["acme.bsky.social"] = "changed"
    with pytest.raises(AuthError, match="Invalid identifier or password"):
        BlueskyProvider(account).fetch_mentions({})


def test_stale_cached_session_logs_in_again_once(bluesky, account):
    BlueskyProvider(account).fetch_mentions({})
    bluesky.access_tokens.clear()  # the PDS forgot every session
    alice = bluesky.add_actor("alice.bsky.social")
    post = bluesky.add_post("@acme.bsky.social ping", author=alice)
    assert [m.external_id for m in BlueskyProvider(account).fetch_mentions({}).mentions] == [post["uri"]]
    assert bluesky.sessions_created == 2


def test_poll_creates_conversation_and_threads_followups(bluesky, account):
    alice = bluesky.add_actor("alice.bsky.social", "Alice")
    root = bluesky.add_post("@acme.bsky.social refund please", author=alice)
    account_poll(account=account)
    bluesky.add_post("any news?", author=alice, reply_to=root["uri"], reason="reply")
    account_poll(account=account)
    conv = Conversation.objects.get(channel_account=account)
    assert conv.external_thread_id == root["uri"] and conv.messages.count() == 2
