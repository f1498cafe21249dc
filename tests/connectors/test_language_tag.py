"""The network's own language tag (X "lang", Mastodon "language"): trusted when it names a
language, ignored when it names none or is not a tag; never a reason to refuse a delivery."""
import base64
import hashlib
import hmac
import json

import pytest

from apps.inbox.models import Message
from apps.insights.language import language_from_tag
from apps.insights.services import text_score

from .hook_accounts import CONSUMER_SECRET, twitter  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_replay_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.mark.parametrize("tag,expected", [
    ("en", "en"), ("en-GB", "en"), ("pt_BR", "pt"), ("ES", "es"), ("in", "id"), ("iw", "he"),
    ("und", ""), ("zxx", ""), ("qme", ""), ("qht", ""), ("", ""), ("e", ""), ("english", ""),
    ("en; DROP TABLE", ""), ("<script>", ""), ("x" * 36, ""), ("\x00en", ""), ("en-\u00e9", ""),
])
def test_language_tag_is_read_as_a_language_only_when_it_names_one(tag, expected):
    assert language_from_tag(tag) == expected


def test_a_tagged_text_is_scored_by_its_tag_not_by_a_guess():
    # "refund pls" alone: lingua does not claim a language (too short); X says English: scored
    assert text_score("refund pls, you charged me twice", "en")[2] != "not_scored"
    # X says Spanish: not scored with the English lexicon, whatever the words look like
    assert text_score("this is terrible", "es") == ("es", None, "not_scored")
    # "und": the text is read as before
    assert text_score("this is terrible", "und")[0] == "en"


def _deliver(client, account, tweet_id, text, lang):
    tweet = {"created_at": "Mon Nov 23 08:00:00 +0000 2026", "id_str": tweet_id, "text": text, "lang": lang,
             "user": {"id_str": "42", "screen_name": "rita", "name": "Rita"},
             "entities": {"user_mentions": [{"id_str": "783214"}]}}
    body = json.dumps({"for_user_id": "783214", "tweet_create_events": [tweet]}).encode()
    sig = "sha256=" + base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(f"/hooks/twitter/{account.pk}/", data=body, content_type="application/json",
                       HTTP_X_TWITTER_WEBHOOKS_SIGNATURE=sig)


def test_a_pushed_tweet_keeps_xs_language_and_a_hostile_tag_changes_nothing(
        client, twitter, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        german = _deliver(client, twitter, "1600000000000000101", "@acme my order never came", "de")
        bogus = _deliver(client, twitter, "1600000000000000102", "@acme my order never came, awful", ["en"])
        huge = _deliver(client, twitter, "1600000000000000103", "@acme my order never came, awful", "q" * 10_000)
    assert [r.status_code for r in (german, bogus, huge)] == [200, 200, 200]
    by_id = {m.external_id: m for m in Message.objects.filter(channel_account=twitter)}
    assert by_id["1600000000000000101"].language == "de"
    assert by_id["1600000000000000101"].sentiment_label == "not_scored"
    for ext in ("1600000000000000102", "1600000000000000103"):  # no usable tag: the text is read
        assert by_id[ext].language == "en" and by_id[ext].sentiment_label == "negative"
