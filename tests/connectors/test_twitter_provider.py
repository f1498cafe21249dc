"""The real tweepy client against the stand-in Twitter API v2 server."""
import time

import pytest

from apps.connectors.providers.base import (
    AuthError,
    OutboundReply,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownOutcome,
)
from apps.connectors.providers.twitter import TwitterProvider

pytestmark = pytest.mark.django_db


def _reply(text, to):
    return OutboundReply(text=text, in_reply_to_external_id=to, is_private=False,
                         recipient_external_id="1", client_reference="1")


def test_fetch_normalizes_recorded_mentions_with_authors(twitter_api, twitter_account):
    seeded = twitter_api.seed_from_fixture()
    result = TwitterProvider(twitter_account).fetch_mentions({})
    assert {m.external_id for m in result.mentions} == {t["id"] for t in seeded}
    first = next(m for m in result.mentions if "respond to my ticket" in m.text)
    assert first.author_handle.startswith("customer")
    assert first.url == f"https://x.com/{first.author_handle}/status/{first.external_id}"
    assert first.thread_id == first.external_id
    assert result.cursor == {"since_id": max(t["id"] for t in seeded)}
    req = twitter_api.requests[-1]
    assert req["path"] == "/2/users/783214/mentions"
    assert "author_id" in req["query"]["expansions"][0]


def test_since_id_only_fetches_newer(twitter_api, twitter_account):
    user = twitter_api.add_user("11", "alice", followers=1234)
    old = twitter_api.add_mention("@acme first", author_id="11")
    provider = TwitterProvider(twitter_account)
    cursor = provider.fetch_mentions({}).cursor
    new = twitter_api.add_mention("@acme second", author_id="11", in_reply_to=old["id"])
    again = provider.fetch_mentions(cursor)
    assert [m.external_id for m in again.mentions] == [new["id"]]
    m = again.mentions[0]
    assert m.in_reply_to_external_id == old["id"] and m.thread_id == old["id"]
    assert m.author_followers == user["public_metrics"]["followers_count"]


def test_pagination_resumes_across_polls(twitter_api, twitter_account, settings):
    settings.POLL_MAX_PAGES = 1
    twitter_api.add_user("11", "alice")
    ids = [twitter_api.add_mention(f"@acme n{i}", author_id="11")["id"] for i in range(150)]
    provider = TwitterProvider(twitter_account)
    first = provider.fetch_mentions({})
    assert len(first.mentions) == 100 and not first.complete
    assert first.cursor["next_token"] and first.cursor["newest_id"] == ids[-1]
    second = provider.fetch_mentions(first.cursor)
    assert second.complete and second.cursor == {"since_id": ids[-1]}
    assert {m.external_id for m in first.mentions + second.mentions} == set(ids)


def test_quoted_tweet_text_comes_along(twitter_api, twitter_account):
    twitter_api.add_user("11", "alice")
    quoted = twitter_api.add_mention("original post", author_id="11")
    twitter_api.add_mention("@acme look at this", author_id="11", quote_of=quoted["id"])
    mentions = TwitterProvider(twitter_account).fetch_mentions({"since_id": quoted["id"]}).mentions
    assert mentions[0].quoted_text == "original post"


def test_own_tweets_are_not_mentions(twitter_api, twitter_account):
    twitter_api.add_mention("@acme we replied", author_id=twitter_account.external_user_id)
    assert TwitterProvider(twitter_account).fetch_mentions({}).mentions == []


@pytest.mark.parametrize("status,error", [(401, AuthError), (403, AuthError), (500, TransientError),
                                          (503, TransientError)])
def test_error_statuses_map_to_connector_errors(twitter_api, twitter_account, status, error):
    twitter_api.add_fault("GET", "/2/users/", status=status)
    with pytest.raises(error) as exc:
        TwitterProvider(twitter_account).fetch_mentions({})
    assert str(status) in exc.value.reason


def test_rate_limit_carries_reset_time(twitter_api, twitter_account):
    reset = int(time.time()) + 120
    twitter_api.add_fault("GET", "/2/users/", status=429, headers={"x-rate-limit-reset": str(reset)})
    with pytest.raises(RateLimited) as exc:
        TwitterProvider(twitter_account).fetch_mentions({})
    assert int(exc.value.reset_at.timestamp()) == reset


def test_malformed_json_is_a_transient_error(twitter_api, twitter_account):
    twitter_api.add_fault("GET", "/2/users/", status=200, body=b'{"data": [')
    with pytest.raises(TransientError, match="malformed"):
        TwitterProvider(twitter_account).fetch_mentions({})


def test_timeout_on_fetch_is_transient(twitter_api, twitter_account, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    twitter_api.add_fault("GET", "/2/users/", status=200, delay=1.0)
    with pytest.raises(TransientError):
        TwitterProvider(twitter_account).fetch_mentions({})


def test_reply_posts_in_reply_to_the_tweet(twitter_api, twitter_account):
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme help", author_id="11")
    sent = TwitterProvider(twitter_account).send_reply(_reply("@alice on it!", tweet["id"]))
    assert twitter_api.replies_to(tweet["id"])[0]["id"] == sent.external_id
    post = [r for r in twitter_api.requests if r["method"] == "POST"][0]
    assert post["headers"]["Authorization"].startswith("OAuth ")  # user context for posting


def test_reply_refused_by_network_is_permanent(twitter_api, twitter_account):
    with pytest.raises(PermanentError, match="not visible or was deleted"):
        TwitterProvider(twitter_account).send_reply(_reply("hi", "12345"))


def test_timeout_after_post_is_unknown_outcome_and_found_later(twitter_api, twitter_account, settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme help", author_id="11")
    twitter_api.add_fault("POST", "/2/tweets", delay=1.0, after_handling=True)
    provider = TwitterProvider(twitter_account)
    with pytest.raises(UnknownOutcome):
        provider.send_reply(_reply("on it", tweet["id"]))
    found = provider.find_sent_reply(_reply("on it", tweet["id"]))
    assert found is not None and found.external_id == twitter_api.replies_to(tweet["id"])[0]["id"]
    assert provider.find_sent_reply(_reply("something else", tweet["id"])) is None
