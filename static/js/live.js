/* cxinbox live inbox: websocket updates (polling when there is none), presence,
   toasts, the composer (counter, canned responses on "/") and keyboard shortcuts.
   No build step; htmx does the fetching and swapping. User text is only ever put
   into the page with textContent. */
(function () {
  "use strict";
  // All filters in view on a wide screen; folded behind "Filters" on a phone.
  var moreFilters = document.getElementById("more-filters");
  if (moreFilters && window.matchMedia("(min-width: 761px)").matches) moreFilters.open = true;
  var page = document.querySelector("[data-live-page]");
  if (!page) { // a page with nothing live on it (reports, settings) says nothing about it
    var idle = document.getElementById("live-state");
    if (idle) idle.hidden = true;
    return;
  }
  var kind = page.getAttribute("data-live-page");
  var me = parseInt(document.body.getAttribute("data-user-id") || "0", 10);
  var conversationId = parseInt(page.getAttribute("data-conversation-id") || "0", 10);
  var stateEl = document.getElementById("live-state");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  window.cxLive = false;

  function setState(text, live) {
    if (!stateEl) return;
    stateEl.textContent = text;
    stateEl.className = "live-state " + (live ? "on" : "off");
  }

  // ---- toasts -------------------------------------------------------------
  var shown = {};
  try { shown = JSON.parse(sessionStorage.getItem("cx:toasts") || "{}"); } catch (e) { shown = {}; }
  function toast(text, href, key) {
    if (key && shown[key]) return;
    if (key) { shown[key] = 1; try { sessionStorage.setItem("cx:toasts", JSON.stringify(shown)); } catch (e) {} }
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "status");
    var link = document.createElement(href ? "a" : "span");
    if (href) link.href = href;
    link.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { el.remove(); });
    el.appendChild(link);
    el.appendChild(close);
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 10000);
  }
  function notificationToast(n) {
    var who = n.actor || "Routing";
    var text = n.kind === "mentioned"
      ? who + " mentioned you in a note on @" + n.handle
      : (n.actor ? who + " assigned you" : "Assigned to you:") + " @" + n.handle;
    toast(text, "/inbox/c/" + n.conversation_id + "/", "n" + n.notification_id);
  }

  // ---- refreshing ---------------------------------------------------------
  // The list refetches at once on the first change after a quiet spell, then at most
  // every 2 s while changes keep coming, with a last refetch after the last one (a
  // debounce refetched never under a steady stream, or 4 times a second). While they
  // keep coming the gap doubles, up to 30 s, and is 2 s again after a quiet gap: a team
  // taking 25 new conversations a second had each of its agents' pages refetch every
  // 2 s, ~90 list requests a second for 200 agents; at most every 10 s, ~25 a second,
  // still stalled a 2-core web tier (docs/performance-history.md). A short burst (an assignment,
  // then a status change a second later) keeps the 2-s gap: the gap widens only after
  // LIST_BUSY_BEFORE_WIDENING refetches in a row had to wait, ~10 s of a steady stream.
  // A hidden tab refetches nothing until it is shown.
  var LIST_REFRESH_EVERY = 2000, LIST_REFRESH_MAX = 30000, LIST_BUSY_BEFORE_WIDENING = 5;
  var listGap = LIST_REFRESH_EVERY, listBusy = 0, listTimer = null, lastListRefresh = -Infinity,
    listMissed = false;
  var refreshTimer = null;
  function refreshList() {
    if (document.visibilityState === "hidden") { listMissed = true; return; }
    if (listTimer) return; // a refetch is already due: it will show this change too
    var since = Date.now() - lastListRefresh, wait = 0;
    if (since >= listGap) {
      listGap = LIST_REFRESH_EVERY; // after a quiet gap: at once, and short gaps again
      listBusy = 0;
    } else {
      wait = listGap - since; // changes keep coming: this one waits, and in a stream the next longer
      listBusy += 1;
      if (listBusy >= LIST_BUSY_BEFORE_WIDENING) listGap = Math.min(listGap * 2, LIST_REFRESH_MAX);
    }
    listTimer = setTimeout(function () {
      listTimer = null;
      lastListRefresh = Date.now();
      htmx.trigger(document.body, "cx:refresh");
    }, wait);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "hidden" && listMissed) { listMissed = false; refreshList(); }
  });
  var lastInbound = maxInbound();
  function maxInbound() {
    var ids = Array.prototype.map.call(document.querySelectorAll("#timeline .msg-in"), function (el) {
      return parseInt(el.id.slice(1), 10);
    });
    return ids.length ? Math.max.apply(null, ids) : 0;
  }
  function refreshThread() {
    if (kind !== "thread") return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      htmx.ajax("GET", page.getAttribute("data-live-url"), { target: "#timeline", swap: "innerHTML" });
    }, 150);
  }
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (kind === "list") { rememberList(); restoreSelection(); }
    if (kind === "thread" && evt.target && evt.target.id === "timeline") {
      var newest = maxInbound();
      var box = document.getElementById("reply-text");
      if (newest > lastInbound && box && box.value.trim()) {
        document.getElementById("moved-on").hidden = false;
      }
      lastInbound = newest;
    }
  });

  // ---- presence -----------------------------------------------------------
  function renderViewers(el, viewers, verb) {
    if (!el) return;
    el.textContent = "";
    (viewers || []).forEach(function (v) {
      if (v.user_id === me) return;
      var span = document.createElement("span");
      span.className = "viewer" + (v.typing ? " typing" : "");
      span.textContent = v.name + (v.typing ? (verb ? " is typing…" : " typing…") : (verb ? " is viewing" : " viewing"));
      el.appendChild(span);
    });
  }
  function onPresence(evt) {
    if (kind === "list") {
      renderViewers(document.querySelector('[data-presence="' + evt.conversation_id + '"]'), evt.viewers, false);
    } else if (evt.conversation_id === conversationId) {
      renderViewers(document.getElementById("viewers"), evt.viewers, true);
    }
  }

  // ---- websocket ----------------------------------------------------------
  var ws = null, backoff = 1000, typingState = false;
  function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }
  function connect() {
    // batch=1: a push's changes come as one {"kind": "events"} frame (a server from
    // before sends one frame per change; onEvent takes both)
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/inbox/?batch=1";
    try { ws = new WebSocket(url); } catch (e) { scheduleReconnect(); return; }
    ws.onopen = function () {
      backoff = 1000;
      window.cxLive = true;
      setState("Live", true);
      if (kind === "thread") send({ action: "view", conversation_id: conversationId, typing: typingState });
      if (kind === "list") refreshList(); // catch up on what happened while disconnected
      else refreshThread();
    };
    ws.onmessage = function (msg) {
      var evt;
      try { evt = JSON.parse(msg.data); } catch (e) { return; }
      if (!evt) return;
      if (evt.kind === "events" && Array.isArray(evt.events)) evt.events.forEach(onEvent);
      else onEvent(evt);
    };
    ws.onclose = function () {
      window.cxLive = false;
      setState("Polling", false);
      scheduleReconnect();
    };
  }
  function onEvent(evt) {
    if (!evt || evt.kind === "hello" || evt.kind === "error") return;
    if (evt.kind === "presence") { onPresence(evt); return; }
    if (evt.notification_id) { notificationToast(evt); if (kind === "list") refreshList(); return; }
    if (kind === "list") refreshList();
    else if (evt.conversation_id === conversationId) refreshThread();
  }
  function scheduleReconnect() {
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
  }
  setState("Connecting", false);
  if ("WebSocket" in window) connect(); else setState("Polling", false);

  // Without a websocket: poll the thread, presence and notifications over HTTP.
  function poll() {
    if (window.cxLive) return;
    if (kind === "thread") {
      refreshThread();
      var body = new URLSearchParams({ typing: typingState ? "1" : "0", active: inputSeen ? "1" : "0" });
      inputSeen = false;
      fetch(page.getAttribute("data-presence-url"), {
        method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf },
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (data) renderViewers(document.getElementById("viewers"), data.viewers, true);
      }).catch(function () {});
    }
    pollNotifications();
  }
  function pollNotifications() {
    fetch("/inbox/notifications/", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        (data ? data.notifications : []).forEach(function (n) {
          notificationToast({ kind: n.kind, actor: n.actor, handle: n.handle, conversation_id: n.conversation_id,
                              notification_id: n.id });
        });
      }).catch(function () {});
  }
  setInterval(poll, kind === "thread" ? 10000 : 20000);
  if (kind === "thread") setInterval(function () { send({ action: "view", conversation_id: conversationId }); }, 20000);

  // Handle time: input on a visible thread page is activity (the timer above is not).
  // At most one heartbeat every 15 s; without a websocket the next poll says "active".
  var inputSeen = false, lastBeat = 0;
  function onInput() {
    if (kind !== "thread" || document.visibilityState === "hidden") return;
    inputSeen = true;
    var now = Date.now();
    if (window.cxLive && now - lastBeat > 15000) { send({ action: "heartbeat" }); lastBeat = now; inputSeen = false; }
  }
  ["keydown", "mousedown", "mousemove", "wheel", "scroll", "touchstart"].forEach(function (name) {
    window.addEventListener(name, onInput, { passive: true, capture: true });
  });

  // ---- list: selection and j/k --------------------------------------------
  var selectedId = null;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#conversation-list .conv")); }
  function rememberList() {
    var ids = rows().map(function (r) { return r.getAttribute("data-id"); });
    try { sessionStorage.setItem("cx:list", JSON.stringify(ids)); sessionStorage.setItem("cx:list-url", location.href); } catch (e) {}
  }
  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-current"); });
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    selectedId = row.getAttribute("data-id");
    var link = row.querySelector("a");
    if (link) link.focus();
  }
  function restoreSelection() {
    if (!selectedId) return;
    var row = document.querySelector('#conversation-list .conv[data-id="' + selectedId + '"]');
    if (row) { row.classList.add("selected"); }
  }
  function move(delta) {
    var all = rows();
    if (!all.length) return;
    var i = all.findIndex(function (r) { return r.classList.contains("selected"); });
    i = i < 0 ? 0 : Math.max(0, Math.min(all.length - 1, i + delta));
    select(all[i]);
  }
  if (kind === "list") rememberList();

  // ---- thread: neighbours for j/k -----------------------------------------
  function neighbour(delta) {
    var ids = [];
    try { ids = JSON.parse(sessionStorage.getItem("cx:list") || "[]"); } catch (e) {}
    var i = ids.indexOf(String(conversationId));
    if (i < 0 || !ids[i + delta]) return null;
    return "/inbox/c/" + ids[i + delta] + "/";
  }

  // Resolve moves on to the next conversation of the list the agent came from (the server
  // checks it is still theirs to work, else takes the top of their work).
  var nextId = document.getElementById("next-id");
  if (nextId && kind === "thread") {
    var following = neighbour(1);
    if (following) nextId.value = following.split("/")[3];
  }

  // ---- shortcuts ------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (e.key === "Escape" && typing && !(t.id === "reply-text" && pickerOpen())) { t.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;
    var handled = true;
    switch (e.key) {
      case "?": if (dialog && dialog.showModal) dialog.showModal(); break;
      case "j": if (kind === "list") move(1); else go(neighbour(1)); break;
      case "k": if (kind === "list") move(-1); else go(neighbour(-1)); break;
      case "o": case "Enter":
        if (kind === "list") {
          var sel = document.querySelector("#conversation-list .conv.selected a");
          if (sel && e.key === "o") sel.click(); else handled = e.key === "o" && !!sel;
        } else handled = false;
        break;
      case "/": if (kind === "list") focus("f-q"); else handled = false; break;
      case "r": if (kind === "thread") focus("reply-text"); else openThenAct("r"); break;
      case "e":
        if (kind === "thread") { var f = document.getElementById("resolve-form"); if (f) f.requestSubmit(); }
        else openThenAct("e");
        break;
      case "a": if (kind === "thread") focus("assignee"); else openThenAct("a"); break;
      case "u": if (kind === "thread") go(sessionStorage.getItem("cx:list-url") || "/inbox/"); else handled = false; break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });
  function go(url) { if (url) location.href = url; }
  function focus(id) { var el = document.getElementById(id); if (el) el.focus(); }
  // In the list, r/e/a act on the selected conversation: open it and do it there.
  function openThenAct(key) {
    var sel = document.querySelector("#conversation-list .conv.selected a");
    if (sel) go(sel.getAttribute("href") + "#do-" + key);
  }
  if (kind === "thread" && /^#do-[rea]$/.test(location.hash)) {
    var act = location.hash.slice(4);
    history.replaceState(null, "", location.pathname);
    if (act === "r") focus("reply-text");
    if (act === "a") focus("assignee");
    if (act === "e") { var rf = document.getElementById("resolve-form"); if (rf) rf.requestSubmit(); }
  }

  // ---- composer ---------------------------------------------------------------
  var composer = document.getElementById("composer");
  var box = document.getElementById("reply-text");
  var picker = document.getElementById("canned-list");
  function pickerOpen() { return picker && !picker.hidden; }
  if (composer && box) {
    var max = parseInt(composer.getAttribute("data-max-length") || "280", 10);
    var signature = composer.getAttribute("data-signature") || "";
    var sigBox = document.getElementById("add-signature");
    var counter = document.getElementById("reply-count");
    var sendBtn = document.getElementById("send-reply");
    var canned = [];
    try { canned = JSON.parse(document.getElementById("canned-data").textContent); } catch (e) { canned = []; }

    // Each reply mode (public, DM) has its own limit: count against the chosen one.
    var modes = composer.querySelectorAll('input[name="private"]');
    var modeLimit = function () {
      var chosen = composer.querySelector('input[name="private"]:checked');
      var n = chosen ? parseInt(chosen.getAttribute("data-max-length") || "", 10) : NaN;
      return isNaN(n) ? max : n;
    };
    var count = function () {
      max = modeLimit();
      var text = box.value.trim();
      var n = Array.from(text).length;
      if (text && signature && sigBox && sigBox.checked) n += 1 + Array.from(signature).length;
      counter.textContent = n + " / " + max;
      var over = n > max;
      counter.classList.toggle("over", over);
      sendBtn.disabled = over;
      box.setAttribute("aria-invalid", over ? "true" : "false");
    };
    box.addEventListener("input", count);
    if (sigBox) sigBox.addEventListener("change", count);
    Array.prototype.forEach.call(modes, function (m) { m.addEventListener("change", count); });
    count();

    // typing signal for collision control (throttled), and "stopped" after a pause
    var lastSent = 0, idleTimer = null;
    box.addEventListener("input", function () {
      var now = Date.now();
      typingState = true;
      if (now - lastSent > 2500) { send({ action: "typing", typing: true }); lastSent = now; }
      clearTimeout(idleTimer);
      idleTimer = setTimeout(function () { typingState = false; send({ action: "typing", typing: false }); }, 6000);
    });
    box.addEventListener("blur", function () {
      if (!box.value.trim()) { typingState = false; send({ action: "typing", typing: false }); }
    });

    // canned responses: "/" then letters, at the start of a word
    var active = -1, matches = [], tokenStart = -1;
    var tokenAtCaret = function () {
      var upto = box.value.slice(0, box.selectionStart);
      var m = /(^|\s)\/([\w-]*)$/.exec(upto);
      if (!m) return null;
      return { start: upto.length - m[2].length - 1, query: m[2].toLowerCase() };
    };
    var closePicker = function () {
      picker.hidden = true; active = -1; box.setAttribute("aria-expanded", "false");
      box.removeAttribute("aria-activedescendant");
    };
    var renderPicker = function () {
      picker.textContent = "";
      matches.forEach(function (c, i) {
        var li = document.createElement("li");
        li.id = "canned-" + c.id;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", i === active ? "true" : "false");
        var key = document.createElement("strong");
        key.textContent = "/" + c.shortcut;
        var title = document.createElement("span");
        title.textContent = " " + c.title;
        var preview = document.createElement("small");
        preview.textContent = c.text;
        li.appendChild(key); li.appendChild(title); li.appendChild(preview);
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); insert(c); });
        picker.appendChild(li);
      });
      if (active >= 0) box.setAttribute("aria-activedescendant", "canned-" + matches[active].id);
    };
    var insert = function (c) {
      var before = box.value.slice(0, tokenStart), after = box.value.slice(box.selectionStart);
      box.value = before + c.text + after;
      var caret = (before + c.text).length;
      box.setSelectionRange(caret, caret);
      closePicker();
      count();
      box.focus();
    };
    box.addEventListener("input", function () {
      var tok = tokenAtCaret();
      if (!tok || !canned.length) { closePicker(); return; }
      tokenStart = tok.start;
      matches = canned.filter(function (c) {
        return c.shortcut.toLowerCase().indexOf(tok.query) === 0 || c.title.toLowerCase().indexOf(tok.query) >= 0;
      }).slice(0, 8);
      if (!matches.length) { closePicker(); return; }
      active = 0;
      picker.hidden = false;
      box.setAttribute("aria-expanded", "true");
      renderPicker();
    });
    box.addEventListener("keydown", function (e) {
      if (!pickerOpen()) return;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        active = (active + (e.key === "ArrowDown" ? 1 : -1) + matches.length) % matches.length;
        renderPicker();
        e.preventDefault();
      } else if (e.key === "Enter" || e.key === "Tab") {
        if (active >= 0) { insert(matches[active]); e.preventDefault(); }
      } else if (e.key === "Escape") {
        closePicker();
        e.preventDefault();
      }
    });
    box.addEventListener("blur", function () { setTimeout(closePicker, 150); });
    composer.addEventListener("submit", function () { sendBtn.disabled = true; sendBtn.textContent = "Sending…"; });
  }

  // "assigned to me" and @mention toasts left from before this page loaded
  pollNotifications();
})();
