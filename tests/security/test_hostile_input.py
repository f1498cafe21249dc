"""Hostile mention text through the real path (stand-in Twitter -> tweepy ->
ingest): stored, shown escaped and intact in the page and the API; text a
database cannot hold (lone surrogates, NUL) never crashes the batch."""
import json

import pytest
from django.urls import reverse

from apps.connectors.models import ChannelAccount
from apps.inbox.models import Conversation, Message
from apps.ingest.polling import account_poll
from apps.ingest.services import mentions_ingest
from tests.connectors.test_ingest import mention

pytestmark = pytest.mark.django_db

SCRIPT = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)> "quoted" \'single\''
RTL = "refund \u202eTNEMYAP\u202c please \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"
ZERO_WIDTH = "zero\u200bwidth\u200c\u200djoin\ufeffbom \U0001F621\U0001F44D\U0001F3FD"
LONG = ("My order #4411 is lost. " * 500)[:10000]
BROKEN = "broken \ud800 surrogate and \udfff low and NUL \x00 end"


def _poll_all(twitter_api, account, capture, texts):
    twitter_api.add_user("66", "mallory", name='<b>Mal</b>\u202e"lory')
    tweets = {name: twitter_api.add_mention(text, author_id="66") for name, text in texts.items()}
    with capture():
        result = account_poll(account=account)
    return tweets, result


def _route_all(queue):
    Conversation.objects.update(queue=queue)  # into the agent's team queue


def test_hostile_mentions_are_stored_intact_and_shown_escaped(twitter_api, twitter_account, agent, queue, client,
                                                              api_client, django_capture_on_commit_callbacks):
    texts = {"script": SCRIPT, "rtl": RTL, "zw": ZERO_WIDTH, "long": LONG}
    tweets, result = _poll_all(twitter_api, twitter_account, django_capture_on_commit_callbacks, texts)
    assert len(result.created_message_ids) == 4
    stored = {m.external_id: m for m in Message.objects.all()}
    for name, tweet in tweets.items():
        assert stored[tweet["id"]].text == texts[name], f"{name} was altered on the way in"
    conv = stored[tweets["script"]["id"]].conversation
    _route_all(queue)

    client.force_login(agent)
    page = client.get(reverse("inbox:detail", args=[conv.pk])).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;Mal&lt;/b&gt;" in page or "<b>Mal</b>" not in page
    assert RTL in page  # directional marks kept (the page isolates them, see below)
    assert ZERO_WIDTH in page
    assert LONG in page  # 10,000 characters, not cut
    listing = client.get("/inbox/").content.decode()
    assert "<script>alert" not in listing and "<b>Mal</b>" not in listing

    api_client.force_authenticate(agent)
    resp = api_client.get(f"/api/v1/conversations/{conv.pk}/messages/")
    assert resp.status_code == 200
    by_id = {m["external_id"]: m["text"] for m in json.loads(resp.content)}
    for name, tweet in tweets.items():
        assert by_id[tweet["id"]] == texts[name]


def test_text_a_database_cannot_hold_does_not_crash_the_batch(twitter_api, twitter_account, agent, queue, client,
                                                              api_client, django_capture_on_commit_callbacks):
    texts = {"before": "@acme first", "broken": BROKEN, "after": "@acme last"}
    tweets, result = _poll_all(twitter_api, twitter_account, django_capture_on_commit_callbacks, texts)
    assert len(result.created_message_ids) == 3
    account = ChannelAccount.objects.get(pk=twitter_account.pk)
    assert account.poll_cursor == {"since_id": tweets["after"]["id"]}  # the poll moved on: no poison pill
    broken = Message.objects.get(external_id=tweets["broken"]["id"])
    _route_all(queue)
    # what cannot be stored is replaced by U+FFFD, the rest is kept as sent
    assert broken.text == "broken \ufffd surrogate and \ufffd low and NUL \ufffd end"
    api_client.force_authenticate(agent)
    resp = api_client.get(f"/api/v1/conversations/{broken.conversation_id}/messages/")
    assert resp.status_code == 200
    assert "broken \ufffd surrogate" in resp.content.decode()
    client.force_login(agent)
    assert client.get(reverse("inbox:detail", args=[broken.conversation_id])).status_code == 200


def test_oversized_fields_from_a_network_are_cut_to_fit_not_fatal(twitter_account, django_capture_on_commit_callbacks):
    huge = mention("9" * 400, text="x" * 10000, author="8" * 300, handle="h" * 5000)
    with django_capture_on_commit_callbacks():
        first = mentions_ingest(account=twitter_account, mentions=[huge, mention("ok")])
        again = mentions_ingest(account=twitter_account, mentions=[huge])
    assert len(first.created_message_ids) == 2  # the other mention of the batch is not lost
    assert again.created_message_ids == [] and again.duplicates == 1  # still idempotent
    stored = Message.objects.get(text="x" * 10000)
    assert len(stored.external_id) == 255 and stored.external_id.startswith("9" * 200)
    assert stored.author_identity.handle == "h" * 200
