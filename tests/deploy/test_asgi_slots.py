"""The ASGI web tier's request slots (cxinbox/asgi_slots.py): at most N requests run Django's
code at once in a worker, the rest wait on the event loop; none is refused or lost."""
import asyncio

import pytest
from django.http import HttpResponse

from cxinbox.asgi_slots import SlottedASGIHandler, request_slots


def test_requests_beyond_the_slots_wait_for_one_and_all_are_answered(settings):
    handler = SlottedASGIHandler(slots=2)
    running, most, done = 0, 0, []

    async def django_code(request):  # stands for the middleware chain and view, in their thread
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        done.append(request)
        return HttpResponse("ok")

    handler.get_response_async = django_code

    async def burst():
        return await asyncio.gather(*(handler.run_get_response(n) for n in range(7)))

    responses = asyncio.run(burst())
    assert most == 2
    assert sorted(done) == list(range(7)) and all(r.status_code == 200 for r in responses)


def test_a_request_cancelled_while_waiting_gives_no_slot_away():
    """A client gone while its request waits (Django cancels the task): the slots stay whole."""
    handler = SlottedASGIHandler(slots=1)
    release = None

    async def django_code(request):
        await release.wait()
        return HttpResponse("ok")

    handler.get_response_async = django_code

    async def scenario():
        nonlocal release
        release = asyncio.Event()
        first = asyncio.create_task(handler.run_get_response("first"))
        waiting = asyncio.create_task(handler.run_get_response("gone"))
        await asyncio.sleep(0.01)
        waiting.cancel()
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return (await asyncio.wait_for(handler.run_get_response("next"), 1)).status_code

    assert asyncio.run(scenario()) == 200


@pytest.mark.parametrize("env,slots", [({}, 8), ({"DB_POOL_MAX_SIZE": "5"}, 5),
                                       ({"DB_POOL_MAX_SIZE": "5", "WEB_REQUEST_SLOTS": "12"}, 12),
                                       ({"WEB_REQUEST_SLOTS": "0"}, 1)])
def test_slots_default_to_the_database_pool(monkeypatch, env, slots):
    monkeypatch.delenv("DB_POOL_MAX_SIZE", raising=False)
    monkeypatch.delenv("WEB_REQUEST_SLOTS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert request_slots() == slots


def test_the_asgi_application_serves_http_through_the_slots():
    """In a process of its own: cxinbox.asgi freezes the collector's view of everything loaded."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("from cxinbox.asgi import application; from cxinbox.asgi_slots import SlottedASGIHandler; "
            "h = application.application_mapping['http']; print(type(h).__name__, h.slots)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test", "DB_POOL_MAX_SIZE": "6"},
                          capture_output=True, text=True)
    assert done.stdout.split() == ["SlottedASGIHandler", "6"], done.stderr[-2000:]
