"""Mastodon with httpx against the stand-in instance on 127.0.0.1."""
import pytest

from apps.connectors.providers.base import AuthError, OutboundReply, PermanentError, RateLimited
from apps.connectors.providers.mastodon import MastodonProvider, html_to_text
from apps.connectors.standins.mastodon import MastodonStandIn
from apps.inbox.models import Conversation, Message
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mastodon(settings):
    with MastodonStandIn() as server:
        settings.MASTODON_API_BASE_URL = "https://unused.invalid"  # the account's own instance wins
        settings.PROVIDER_TIMEOUT_SECONDS = 2.0
        yield server


@pytest.fixture
def account(mastodon):
    return ChannelAccountFactory(provider="mastodon", name="Acme on Mastodon", handle="@acme@mastodon.example",
                                 external_user_id=mastodon.brand["id"], api_base_url=mastodon.base_url,
                                 credentials={"access_token": "mastodon-token"})


def _reply(text, to, private=False, ref="1"):
    return OutboundReply(text=text, in_reply_to_external_id=to, is_private=private,
                         recipient_external_id="", client_reference=ref)


def test_mentions_are_fetched_with_since_id_and_only_mentions(mastodon, account):
    alice = mastodon.add_account("alice", "Alice A", domain="fosstodon.org", followers=321)
    first = mastodon.add_status("my order is late", author=alice)
    mastodon.add_other_notification("favourite", alice)
    provider = MastodonProvider(account)
    result = provider.fetch_mentions({})
    assert [m.external_id for m in result.mentions] == [first["id"]]
    m = result.mentions[0]
    assert m.text == "@acme my order is late"
    assert m.author_handle == "alice@fosstodon.org" and m.author_followers == 321
    assert m.url == first["url"] and not m.is_private
    req = mastodon.requests[-1]
    assert req["path"] == "/api/v1/notifications" and req["query"]["types[]"] == ["mention"]

    second = mastodon.add_status("still waiting", author=alice, in_reply_to=first["id"])
    again = provider.fetch_mentions(result.cursor)
    assert [x.external_id for x in again.mentions] == [second["id"]]
    assert again.mentions[0].in_reply_to_external_id == first["id"]
    assert mastodon.requests[-1]["query"]["since_id"] == [result.cursor["since_id"]]


def test_backlog_pages_resume_across_polls(mastodon, account, settings):
    settings.POLL_MAX_PAGES = 1
    bob = mastodon.add_account("bob")
    ids = [mastodon.add_status(f"n{i}", author=bob)["id"] for i in range(55)]
    provider = MastodonProvider(account)
    first = provider.fetch_mentions({})
    assert len(first.mentions) == 40 and not first.complete
    second = provider.fetch_mentions(first.cursor)
    assert second.complete
    assert {m.external_id for m in first.mentions + second.mentions} == set(ids)
    assert provider.fetch_mentions(second.cursor).mentions == []


def test_direct_mention_gets_a_direct_reply_addressed_to_the_customer(mastodon, account):
    carol = mastodon.add_account("carol", domain="mastodon.example")
    dm = mastodon.add_status("my card number leaked?", author=carol, visibility="direct")
    mention = MastodonProvider(account).fetch_mentions({}).mentions[0]
    assert mention.is_private
    # Even a reply composed as public must not widen a direct conversation.
    sent = MastodonProvider(account).send_reply(_reply("We're on it, please check your DMs", dm["id"]))
    posted = mastodon.posted[-1]
    assert posted["visibility"] == "direct" and posted["in_reply_to_id"] == dm["id"]
    assert posted["text"].startswith("@carol ")  # direct posts reach only who they mention
    assert sent.external_id == posted["id"] and sent.url == posted["url"]


@pytest.mark.parametrize("parent_visibility,private,expected", [
    ("public", False, "public"), ("unlisted", False, "unlisted"), ("private", False, "private"),
    ("public", True, "direct"),
])
def test_reply_visibility_is_never_wider_than_the_post(mastodon, account, parent_visibility, private, expected):
    dave = mastodon.add_account("dave", domain="social.example")
    status = mastodon.add_status("help", author=dave, visibility=parent_visibility, spoiler_text="billing")
    MastodonProvider(account).send_reply(_reply("Sorry about that!", status["id"], private=private))
    posted = mastodon.posted[-1]
    assert posted["visibility"] == expected
    assert posted["spoiler_text"] == "billing"  # the content warning stays on
    assert posted["text"] == "@dave@social.example Sorry about that!"


def test_retried_post_with_same_idempotency_key_is_not_posted_twice(mastodon, account):
    erin = mastodon.add_account("erin")
    status = mastodon.add_status("hi", author=erin)
    provider = MastodonProvider(account)
    a = provider.send_reply(_reply("Hello!", status["id"], ref="42"))
    b = provider.send_reply(_reply("Hello!", status["id"], ref="42"))
    assert a.external_id == b.external_id and len(mastodon.posted) == 1
    assert provider.find_sent_reply(_reply("Hello!", status["id"], ref="42")).external_id == a.external_id


def test_deleted_parent_is_a_permanent_failure(mastodon, account):
    with pytest.raises(PermanentError, match="gone"):
        MastodonProvider(account).send_reply(_reply("hello", "999"))


def test_revoked_token_and_rate_limit_map_to_connector_errors(mastodon, account):
    mastodon.tokens.clear()
    with pytest.raises(AuthError, match="401"):
        MastodonProvider(account).fetch_mentions({})
    mastodon.tokens.add("mastodon-token")
    mastodon.add_fault("GET", "/api/v1/notifications", status=429,
                       headers={"X-RateLimit-Reset": "2030-01-01T00:00:00.000Z"})
    with pytest.raises(RateLimited) as exc:
        MastodonProvider(account).fetch_mentions({})
    assert exc.value.reset_at.year == 2030


def test_poll_stores_conversation_and_customer_reply_threads_onto_it(mastodon, account):
    frank = mastodon.add_account("frank", "Frank", domain="hachyderm.io")
    first = mastodon.add_status("where is my refund", author=frank)
    account_poll(account=account)
    conv = Conversation.objects.get(channel_account=account)
    assert conv.identity.handle == "frank@hachyderm.io"
    ours = MastodonProvider(account).send_reply(_reply("Checking now", first["id"]))
    Message.objects.create(conversation=conv, channel_account=account, direction="out", text="Checking now",
                           external_id=ours.external_id, sent_at=conv.last_message_at, send_status="sent")
    mastodon.add_status("thanks", author=frank, in_reply_to=ours.external_id)
    account_poll(account=account)
    assert Conversation.objects.filter(channel_account=account).count() == 1
    assert conv.messages.filter(direction="in").count() == 2


def test_html_content_becomes_plain_text():
    content = '<p><span class="h-card"><a href="x">@<span>acme</span></a></span> line one<br>line &amp; two</p><p>next</p>'
    assert html_to_text(content) == "@acme line one\nline & two\n\nnext"


def test_agent_reply_in_a_direct_conversation_goes_out_direct(mastodon, account, agent):
    from apps.inbox.sending import message_send
    from apps.inbox.services import reply_create

    gus = mastodon.add_account("gus", domain="mstdn.example")
    dm = mastodon.add_status("my address changed, see DM", author=gus, visibility="direct")
    account_poll(account=account)
    conv = Conversation.objects.get(channel_account=account)
    assert not conv.is_public
    # the composer's default is a public reply: the network side keeps it direct
    msg = message_send(message_id=reply_create(conversation=conv, agent=agent, text="Updated, thanks!").pk)
    assert msg.send_status == "sent"
    posted = mastodon.posted[-1]
    assert posted["visibility"] == "direct" and posted["in_reply_to_id"] == dm["id"]
    assert posted["text"] == "@gus@mstdn.example Updated, thanks!" and msg.external_id == posted["id"]
