"""Test settings: the real services when DATABASE_URL / REDIS_URL are set (CI),
the embedded defaults otherwise."""
from .base import *  # noqa: F403
from .base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# The whole run shares the throttles' counters (one address, cache kept across tests):
# out of reach here; tests/accounts/test_lockout_throttle.py sets its own rates.
API_THROTTLE_ANON_RATE = env("API_THROTTLE_ANON_RATE", default="100000/min")
API_THROTTLE_USER_RATE = env("API_THROTTLE_USER_RATE", default="100000/min")
CELERY_BEAT_SCHEDULE = {}
# The reports' applier waits while mentions wait (apps/reports/pacing.py): off here, where a test's
# unrouted message would hold another test's counting; tests/reports/test_pacing.py turns it on.
REPORTS_YIELD_BACKLOG_SECONDS = env.float("REPORTS_YIELD_BACKLOG_SECONDS", default=0)
# The demo network refuses no reply unless a test asks it to (tests/connectors/test_demo_network.py).
DEMO_NETWORK_FAILURE_RATE = 0.0
if not REDIS_URL:  # noqa: F405
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded file broker in a folder of the test run's own, not the checkout's
    # .broker: tasks the tests queue were left there for the next `make run` worker,
    # which ran them against its own database. The environment carries the folder to
    # any worker process a test starts.
    import atexit
    import os
    import shutil
    import tempfile

    if "CX_TEST_BROKER_DIR" not in os.environ:  # the test run itself: it makes the folder and removes it
        os.environ["CX_TEST_BROKER_DIR"] = tempfile.mkdtemp(prefix="cx-test-broker-")
        atexit.register(shutil.rmtree, os.environ["CX_TEST_BROKER_DIR"], ignore_errors=True)
    _test_broker = os.environ["CX_TEST_BROKER_DIR"]
    for _sub in ("queue", "processed", "control"):
        os.makedirs(os.path.join(_test_broker, _sub), exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {  # noqa: F405
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "data_folder_in": os.path.join(_test_broker, "queue"),
        "data_folder_out": os.path.join(_test_broker, "queue"),
        "processed_folder": os.path.join(_test_broker, "processed"),
        "control_folder": os.path.join(_test_broker, "control"),
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "apps.core.channel_layer.SpoolChannelLayer",  # noqa: F405
                                  "CONFIG": {"folder": os.path.join(_test_broker, "events")}}}
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
