import factory
from django.utils import timezone

from apps.accounts.models import Presence, Role, Team, User
from apps.connectors.models import ChannelAccount
from apps.contacts.models import Customer, SocialIdentity
from apps.inbox.models import Conversation, Message, Queue
from apps.routing.models import UnroutedMessage


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"First{n}")
    role = Role.AGENT
    presence = Presence.ONLINE
    last_seen_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def save_pw(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Queue

    name = factory.Sequence(lambda n: f"Queue {n}")
    team = factory.SubFactory(TeamFactory)


class ChannelAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelAccount

    provider = "twitter"
    name = "Acme on X"
    handle = factory.Sequence(lambda n: f"@acme{n}")
    external_user_id = "783214"
    credentials = factory.LazyFunction(lambda: {"bearer_token": "test-bearer", "consumer_key": "ck",
                                                "consumer_secret": "cs", "access_token": "at",
                                                "access_token_secret": "ats"})


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")


class SocialIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SocialIdentity

    customer = factory.SubFactory(CustomerFactory)
    provider = "twitter"
    external_id = factory.Sequence(lambda n: f"5000{n}")
    handle = factory.Sequence(lambda n: f"cust{n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    channel_account = factory.SubFactory(ChannelAccountFactory)
    identity = factory.SubFactory(SocialIdentityFactory)
    customer = factory.SelfAttribute("identity.customer")
    external_thread_id = factory.Sequence(lambda n: f"thread{n}")
    status = "new"
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message
        skip_postgeneration_save = True

    conversation = factory.SubFactory(ConversationFactory)
    channel_account = factory.SelfAttribute("conversation.channel_account")
    direction = "in"
    external_id = factory.Sequence(lambda n: f"7000{n}")
    author_identity = factory.SelfAttribute("conversation.identity")
    text = "Hello @acme, my order is late"
    sent_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def routing_marker(obj, create, extracted, **kwargs):
        """A customer message stored and not routed (routing.UnroutedMessage), as
        ingest stores it; one with a sentiment label counts as routed, as rows did
        before ingest scored messages."""
        if create and obj.direction == "in" and not obj.sentiment_label:
            UnroutedMessage.objects.get_or_create(message=obj)
