"""The project's Celery app plus a no-op task, for the broker-limit benchmark.
Workers of the benchmark run `celery -A bench.celery_app worker`."""
import os

import redis

from cxinbox.celery import app

NOOP_COUNTER = "bench:noop:count"
_redis = None


@app.task(name="bench.noop", ignore_result=True)
def noop(total: int):
    # One INCR per task; the first and the last write their time (the drain window).
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    n = _redis.incr(NOOP_COUNTER)
    if n == 1 or n == total:
        _redis.hset("bench:noop:times", "first" if n == 1 else "last", repr(_time()))


def _time():
    import time

    return time.time()


__all__ = ["app", "noop"]
