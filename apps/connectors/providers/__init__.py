"""Provider registry: ChannelAccount.provider -> provider class.

Adding a network is one file (docs/connectors.md) plus one line here."""
from importlib import import_module

from .base import BaseProvider
from .demo import simulated_provider_class

_PROVIDERS = {
    "twitter": "apps.connectors.providers.twitter.TwitterProvider",
    "demo": "apps.connectors.providers.demo.DemoProvider",
    "mastodon": "apps.connectors.providers.mastodon.MastodonProvider",
    "bluesky": "apps.connectors.providers.bluesky.BlueskyProvider",
    "reddit": "apps.connectors.providers.reddit.RedditProvider",
    "email": "apps.connectors.providers.email.EmailProvider",
    "webhook": "apps.connectors.providers.webhook.WebhookProvider",
}

# Push delivery (/hooks/<provider>/<account>/). A provider class that sets
# `supports_push` receives its own deliveries; a network whose push side is
# separate from its polling client names its receiver here.
_PUSH_RECEIVERS = {
    "twitter": "apps.connectors.providers.twitter_activity.TwitterAccountActivity",
}


def register(name: str, dotted_path: str) -> None:
    _PROVIDERS[name] = dotted_path


def _load(dotted_path: str):
    module_path, cls_name = dotted_path.rsplit(".", 1)
    return getattr(import_module(module_path), cls_name)


def provider_class(name: str) -> type[BaseProvider]:
    try:
        dotted = _PROVIDERS[name]
    except KeyError:
        raise LookupError(f"no provider for {name!r}") from None
    return _load(dotted)


def import_all() -> None:
    """Import every provider (and so its network SDK) now. The web entry points
    call it at start: otherwise the first thread page of each network in each
    process pays the SDK's import (atproto ~2 s, the others 0.03-0.2 s)."""
    for dotted in _PROVIDERS.values():
        _load(dotted)


def get_provider(account) -> BaseProvider:
    """The client of the account's network; a simulated (demo) account's is the simulated
    network with that network's limits (demo.py), which never leaves the machine."""
    cls = provider_class(account.provider)
    if getattr(account, "is_simulated", False):
        cls = simulated_provider_class(cls)
    return cls(account)


def push_receiver(account):
    """The object that verifies and parses push deliveries for this account, or
    None when its network only polls."""
    if account.provider in _PUSH_RECEIVERS:
        return _load(_PUSH_RECEIVERS[account.provider])(account)
    try:
        cls = provider_class(account.provider)
    except LookupError:
        return None
    return cls(account) if getattr(cls, "supports_push", False) else None


def pushes(provider: str) -> bool:
    """True for the networks that deliver to /hooks/<provider>/<account>/ (the Channels page
    shows the URL to register)."""
    if provider in _PUSH_RECEIVERS:
        return True
    try:
        return bool(getattr(provider_class(provider), "supports_push", False))
    except LookupError:
        return False


def polls(provider: str) -> bool:
    """False for push-only channels: the beat does not poll them."""
    try:
        return getattr(provider_class(provider), "supports_polling", True)
    except LookupError:
        return False
