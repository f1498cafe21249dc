"""The push accounts the /hooks/ tests deliver to (one definition for every test file
that signs deliveries): an X account with its consumer secret, a generic webhook."""
import pytest

from tests.factories import ChannelAccountFactory

CONSUMER_SECRET = "twitter-consumer-secret"


@pytest.fixture
def twitter(db):
    return ChannelAccountFactory(external_user_id="783214",
                                 credentials={"bearer_token": "b", "consumer_key": "ck",
                                              "consumer_secret": CONSUMER_SECRET, "access_token": "at",
                                              "access_token_secret": "ats"})


@pytest.fixture
def webhook(db):
    return ChannelAccountFactory(provider="webhook", name="Shop chat", handle="shop-chat", external_user_id="",
                                 credentials={}, api_base_url="https://unused.invalid/replies",
                                 hook_secrets={"inbound_token": "in-token-123", "signing_secret": "sign-456"})
