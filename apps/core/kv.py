"""Small keyed flags on the hot paths (a push delivery's replay claim, an account's
"ingest task queued" flag): Redis commands on one client per process.

Django's RedisCache builds a new redis.Redis object for every call (~0.2 ms each, three
per push delivery: a fifth of what the web tier spent on one; issue 19). These helpers
send the same commands on a client made once, with the cache's own key names, so
`cache.clear()` and the cache's Redis database still hold them. Values are plain strings
(never read through the cache API). Without a Redis cache (the embedded mode, the
tests' locmem cache) they go through the Django cache, as before."""
from __future__ import annotations

import threading

from django.conf import settings
from django.core.cache import cache

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def _redis():
    """The process's client on the cache's Redis, or None when the cache is not Redis. Read from
    the settings at each call (a dict look-up), so a changed CACHES (override_settings) is followed."""
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    location = config["LOCATION"]
    location = location[0] if isinstance(location, (list, tuple)) else location
    client = _clients.get(location)
    if client is None:
        with _clients_lock:
            client = _clients.get(location)
            if client is None:
                import redis

                client = _clients[location] = redis.Redis.from_url(location, socket_timeout=2.0,
                                                                   socket_connect_timeout=2.0)
    return client


def kv_add(key: str, value: str, timeout: int) -> bool:
    """Sets the key if it is absent (expiring after `timeout` s); True if this call set it."""
    client = _redis()
    if client is None:
        return cache.add(key, value, timeout)
    return bool(client.set(cache.make_key(key), value, nx=True, ex=max(1, int(timeout))))


def kv_get(key: str) -> str | None:
    client = _redis()
    if client is None:
        return cache.get(key)
    value = client.get(cache.make_key(key))
    return value.decode() if value is not None else None


def kv_set(key: str, value: str, timeout: int) -> None:
    client = _redis()
    if client is None:
        cache.set(key, value, timeout)
        return
    client.set(cache.make_key(key), value, ex=max(1, int(timeout)))


def kv_delete(key: str) -> None:
    client = _redis()
    if client is None:
        cache.delete(key)
        return
    client.delete(cache.make_key(key))
