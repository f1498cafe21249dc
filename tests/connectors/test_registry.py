"""The provider registry: every network loads at the web server's start."""
import sys


def test_import_all_loads_every_provider_so_no_thread_page_pays_an_sdk_import():
    from apps.connectors.providers import _PROVIDERS, import_all

    import_all()
    for dotted in _PROVIDERS.values():
        assert dotted.rsplit(".", 1)[0] in sys.modules, dotted
