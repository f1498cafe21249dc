"""Provider registry: ChannelAccount.provider -> provider class."""
from importlib import import_module

from .base import BaseProvider

_PROVIDERS = {
    "twitter": "apps.connectors.providers.twitter.TwitterProvider",
    "demo": "apps.connectors.providers.demo.DemoProvider",
}


def register(name: str, dotted_path: str) -> None:
    _PROVIDERS[name] = dotted_path


def provider_class(name: str) -> type[BaseProvider]:
    try:
        module_path, cls_name = _PROVIDERS[name].rsplit(".", 1)
    except KeyError:
        raise LookupError(f"no provider for {name!r}") from None
    return getattr(import_module(module_path), cls_name)


def get_provider(account) -> BaseProvider:
    return provider_class(account.provider)(account)
