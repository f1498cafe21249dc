// Controls marked data-submit-on-change submit their form when changed (the
// presence switch). A static file, not an inline onchange: the CSP allows no
// inline event handlers.
document.addEventListener("change", function (e) {
  var el = e.target;
  if (el && el.hasAttribute && el.hasAttribute("data-submit-on-change") && el.form) el.form.submit();
});

// Polling while the websocket is down: "cx:poll" on the body every 20 s (the inbox
// list listens for it). Not an htmx trigger filter ("every 20s [!window.cxLive]"):
// htmx evaluates filters as code, which the CSP refuses (no 'unsafe-eval').
setInterval(function () {
  if (!window.cxLive && document.body) document.body.dispatchEvent(new Event("cx:poll"));
}, 20000);
