"""A small, realistic inbox for the browser tests and the screenshots."""
import datetime as dt

from django.utils import timezone

from apps.inbox import services
from apps.inbox.models import CannedResponse, Conversation, Message
from tests.factories import ConversationFactory, CustomerFactory, MessageFactory, SocialIdentityFactory

PEOPLE = [
    # handle, name, followers, text, sentiment, bucket, status, tags
    ("maria_g", "María González", 18400, "@acme my order #4471 arrived broken and support hasn't answered in 2 days. "
     "I want a refund.", -0.74, 0, "open", ["refund", "damaged"]),
    ("techdad", "Tom Becker", 312, "@acme the app keeps logging me out since the update, is there an outage?",
     -0.42, 1, "new", ["outage"]),
    ("lena.codes", "Lena Park", 5200, "@acme can I change the delivery address on an order that already shipped?",
     0.0, 2, "new", []),
    ("sam_runs", "Sam Ortiz", 89, "@acme love the new running shoes, super comfy! Do you ship to Canada?",
     0.86, 2, "open", ["shipping"]),
    ("kofi_a", "Kofi Asante", 1250, "@acme promo code SPRING20 says invalid at checkout", -0.3, 1, "pending",
     ["billing"]),
    ("lucia_m", "Lucía Martín", 40, "@acme ¿cuándo llega mi pedido? Llevo una semana esperando", None, 2, "new", []),
    ("noor", "Noor Haddad", 760, "@acme thanks for the quick fix yesterday!", 0.64, 3, "open", []),
]


def make_inbox(*, agent, supervisor, queue, account) -> list[Conversation]:
    now = timezone.now()
    queue.name = "Customer care"
    queue.save()
    CannedResponse.objects.get_or_create(shortcut="thanks", team=None, defaults={
        "title": "Thanks", "text": "Thanks for reaching out, {{ customer.name }}! — {{ agent.first_name }}"})
    CannedResponse.objects.get_or_create(shortcut="dm", team=None, defaults={
        "title": "Move to DM", "text": "Sorry about this, {{ customer.name }}. Could you DM us your order number?"})
    conversations = []
    for i, (handle, name, followers, text, sentiment, bucket, status, tags) in enumerate(PEOPLE):
        customer = CustomerFactory(name=name, tier="vip" if i == 0 else "standard")
        identity = SocialIdentityFactory(customer=customer, handle=handle, display_name=name,
                                         followers_count=followers, profile_url=f"https://x.com/{handle}")
        at = now - dt.timedelta(minutes=7 + i * 23)
        conv = ConversationFactory(
            channel_account=account, queue=queue, identity=identity, customer=customer, subject=text,
            status=status, priority_bucket=bucket, priority=[92, 74, 50, 22][bucket], last_sentiment=sentiment,
            first_sentiment=sentiment, last_message_at=at, last_inbound_at=at,
            sla_due_at=now + dt.timedelta(minutes=25 + 40 * i) if status != "pending" else None,
            sla_breached=i == 1, assignee=agent if i in (3, 6) else (supervisor if i == 4 else None))
        MessageFactory(conversation=conv, text=text, sent_at=at, sentiment=sentiment,
                       sentiment_label="not_scored" if sentiment is None else (
                           "positive" if sentiment >= 0.05 else "negative" if sentiment <= -0.05 else "neutral"),
                       language="es" if handle == "lucia_m" else "en",
                       url=f"https://x.com/{handle}/status/{1790000000 + i}")
        if tags:
            services.conversation_tags_set(conversation=conv, tags=tags, actor=agent)
        conversations.append(conv)

    # the first one is a whole story: quoted tweet, replies both ways, a note, a failed send
    story = conversations[0]
    Message.objects.filter(conversation=story).update(raw={"quoted_text": "Our spring collection just dropped. "
                                                                          "Free shipping this week only!"})
    services.conversation_assign(conversation=story, assignee=agent, actor=supervisor, reason="VIP customer")
    MessageFactory(conversation=story, direction="out", external_id="1790000101", author_user=agent,
                   author_identity=None, send_status="sent", sent_at=now - dt.timedelta(minutes=5),
                   text="So sorry, María! We've sent you a DM to sort out the refund right away.")
    services.note_create(conversation=story, author=agent,
                         text=f"@{supervisor.username} refund over $200: can you approve?")
    MessageFactory(conversation=story, text="Got it, replied in DM. Thanks for the fast answer.",
                   sent_at=now - dt.timedelta(minutes=2), sentiment=0.44, sentiment_label="positive")
    MessageFactory(conversation=story, direction="out", external_id=None, author_user=agent, author_identity=None,
                   send_status="failed", sent_at=now - dt.timedelta(minutes=1), text="You're welcome!",
                   failure_reason="X refused the post (429): rate limit, retried until the reset")
    # another conversation of hers, by email
    from tests.factories import ChannelAccountFactory

    email = ChannelAccountFactory(provider="email", handle="support@acme.example", name="Acme support mail")
    ConversationFactory(channel_account=email, queue=queue, customer=story.customer,
                        identity=SocialIdentityFactory(customer=story.customer, provider="email",
                                                       handle="maria@example.com"),
                        subject="Invoice for order #4471", status="resolved",
                        last_message_at=now - dt.timedelta(days=12))
    return conversations
