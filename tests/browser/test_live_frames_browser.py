"""static/js/live.js against the frames the socket sends (a fake WebSocket in the page,
so the timing is the page's own): it asks for list frames, takes a list frame and an
old single-change frame alike, refetches the list at once on the first change after a
quiet spell, then after 2 s while changes keep coming, the gap doubling up to 30 s, with
one after the last; a hidden tab refetches when it is shown again."""
import datetime as dt
import json
import time

import pytest

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAKE_SOCKET = """
window.__sockets = [];
window.__refreshes = [];
document.addEventListener("cx:refresh", function () { window.__refreshes.push(performance.now()); });
window.WebSocket = function (url) {
  var self = this;
  this.url = url;
  this.readyState = 1;
  window.__sockets.push(this);
  setTimeout(function () { if (self.onopen) self.onopen(); }, 0);
};
window.WebSocket.prototype.send = function () {};
window.WebSocket.prototype.close = function () {};
"""


def test_list_frames_old_frames_and_a_throttled_refetch(live_server, new_page, agent):
    page = new_page()
    page.add_init_script(FAKE_SOCKET)
    login(page, live_server.url, agent)
    page.wait_for_function("window.__sockets.length === 1 && window.__refreshes.length === 1")
    assert page.evaluate("window.__sockets[0].url").endswith("/ws/inbox/?batch=1")

    def frame(obj):
        return page.evaluate("data => { window.__sockets[0].onmessage({data: data}); return performance.now(); }",
                             json.dumps(obj))

    time.sleep(2.2)  # quiet: the first change refetches at once
    frame({"kind": "events", "events": [{"kind": "assigned", "conversation_id": 1, "assignee_id": 2},
                                        {"kind": "priority_changed", "conversation_id": 3, "priority_bucket": 0}]})
    page.wait_for_function("window.__refreshes.length === 2", timeout=500)
    # a steady stream of old-style frames (one change each), 10 a second for 3 s
    for _ in range(30):
        last = frame({"kind": "conversation_updated", "conversation_id": 1})
        time.sleep(0.1)
    time.sleep(4.5)
    times = page.evaluate("window.__refreshes")
    gaps = [b - a for a, b in zip(times[1:], times[2:])]
    # during the ~3-s stream: a refetch 2 s after the batch's, then one 2 s later (not one
    # per change, not none until it ends; a burst this short does not widen the gap), which
    # is after the last change
    assert len(times) == 4, times
    assert 1900 <= gaps[0] <= 2600 and 1900 <= gaps[1] <= 2600, gaps
    assert times[-1] > last


def _stream(page, seconds, every_ms=100):
    """A change every `every_ms` on the page's paused clock; the page time of the last one."""
    last = None
    for _ in range(int(seconds * 1000 / every_ms)):
        last = page.evaluate("data => { window.__sockets[0].onmessage({data: data}); return performance.now(); }",
                             json.dumps({"kind": "conversation_updated", "conversation_id": 1}))
        page.clock.run_for(every_ms)
    return last


def test_a_long_stream_widens_the_refetch_gap_to_30_s_and_quiet_brings_back_2_s(live_server, new_page, agent):
    """A busy team's pages refetch every 30 s, not every 2 s (what 200 agents' pages cost
    the web tier: docs/performance-history.md), once a stream has gone on for ~10 s (a short burst
    keeps 2-s gaps); after a quiet gap a change shows at once again."""
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
    page = new_page()
    page.clock.install(time=start)
    page.add_init_script(FAKE_SOCKET)
    login(page, live_server.url, agent)
    page.wait_for_function("window.__sockets.length === 1 && window.__refreshes.length === 1")
    page.clock.pause_at(start + dt.timedelta(hours=1))

    before = len(page.evaluate("window.__refreshes"))
    _stream(page, 100, every_ms=250)
    times = page.evaluate("window.__refreshes")[before:]
    gaps = [round(b - a) for a, b in zip(times, times[1:])]
    assert gaps[:8] == [2000] * 5 + [4000, 8000, 16_000], gaps
    assert gaps[8:] and all(gap == 30_000 for gap in gaps[8:]), gaps

    page.clock.run_for(32_000)  # quiet for longer than the gap: the trailing refetch, then nothing
    n = len(page.evaluate("window.__refreshes"))
    page.clock.run_for(32_000)
    assert len(page.evaluate("window.__refreshes")) == n
    at = _stream(page, 0.1)
    after = page.evaluate("window.__refreshes")[n:]
    assert [round(t) for t in after] == [round(at)]  # at once
    _stream(page, 2.5)
    assert round(page.evaluate("window.__refreshes")[-1] - at) == 2000  # and 2 s gaps again


def test_a_hidden_tab_refetches_when_shown(live_server, new_page, agent):
    page = new_page()
    page.add_init_script(FAKE_SOCKET + """
window.__hidden = false;
Object.defineProperty(document, "visibilityState",
                      {get: function () { return window.__hidden ? "hidden" : "visible"; }});
""")
    login(page, live_server.url, agent)
    page.wait_for_function("window.__sockets.length === 1 && window.__refreshes.length === 1")
    time.sleep(2.2)
    page.evaluate("window.__hidden = true")
    for _ in range(5):
        page.evaluate("data => window.__sockets[0].onmessage({data: data})",
                      json.dumps({"kind": "events", "events": [{"kind": "assigned", "conversation_id": 1}]}))
    time.sleep(2.5)
    assert len(page.evaluate("window.__refreshes")) == 1  # nothing while hidden
    page.evaluate("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_function("window.__refreshes.length === 2", timeout=500)  # at once when shown
