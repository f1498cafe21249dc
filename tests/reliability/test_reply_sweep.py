"""A reply's send task lost with Redis (restarted without its data) is sent by the
beat sweep (outbound.send_sweep) on a real worker, not by an operator, and once."""
import signal
import time

from apps.inbox.models import Message

from .conftest import needs_real_services
from .procs import client_app, wait_for

pytestmark = needs_real_services


def test_reply_lost_with_redis_is_sent_by_the_sweep_once(twitter_api, twitter_account, agent, workers,
                                                          redis_server, postgres,
                                                          django_capture_on_commit_callbacks):
    from apps.inbox.services import reply_create
    from tests.factories import ConversationFactory, MessageFactory

    twitter_api.add_user("11", "alice")
    tweet = twitter_api.add_mention("@acme where is my refund", author_id="11")
    conv = ConversationFactory(channel_account=twitter_account, identity__external_id="11")
    MessageFactory(conversation=conv, external_id=tweet["id"], text=tweet["text"])
    with django_capture_on_commit_callbacks(execute=False):
        msg = reply_create(conversation=conv, agent=agent, text="@alice it is on its way")
    broker = client_app(redis_server.url)
    broker.send_task("outbound.send_message", [msg.pk])  # queued, no worker yet
    broker.close()
    redis_server.restart(sig=signal.SIGKILL, down_for=0.2)  # no AOF: the send task is gone
    worker = workers(env={"REPLY_SWEEP_AFTER_SECONDS": "1"})
    time.sleep(3)
    assert Message.objects.get(pk=msg.pk).send_status == "queued", "nothing else sends it"

    def beat_tick():  # what beat sends every REPLY_SWEEP_SECONDS
        app = client_app(redis_server.url)
        app.send_task("outbound.send_sweep")
        app.close()

    beat_tick()
    wait_for(lambda: Message.objects.filter(pk=msg.pk, send_status="sent").exists(), 30, what="reply sent")
    beat_tick()
    beat_tick()
    time.sleep(3)
    assert len(twitter_api.replies_to(tweet["id"])) == 1, worker.log()[-3000:]
