"""static/js/live.js against the frames the socket sends (a fake WebSocket in the page,
so the timing is the page's own): it asks for list frames, takes a list frame and an
old single-change frame alike, refetches the list at once on the first change after a
quiet spell and at most every 2 s while changes keep coming, with one after the last."""
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
    time.sleep(2.5)
    times = page.evaluate("window.__refreshes")
    gaps = [b - a for a, b in zip(times[1:], times[2:])]
    # during the ~3-s stream: a refetch every 2 s after the batch's (not one per change, not
    # none until it ends), and one after the last change
    assert 4 <= len(times) <= 5, times
    assert all(1900 <= gap <= 2600 for gap in gaps), gaps
    assert times[-1] > last
