// Copy buttons of the Channels pages: <button data-copy="element-id"> copies that element's text.
// A static file, not an inline handler: the CSP allows no inline scripts.
document.addEventListener("click", function (e) {
  var button = e.target && e.target.closest ? e.target.closest("[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.textContent.trim();
  var done = function () { var old = button.textContent; button.textContent = "Copied"; setTimeout(function () { button.textContent = old; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () {});
  } else {
    var range = document.createRange(); range.selectNodeContents(source);
    var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
    try { document.execCommand("copy"); done(); } catch (err) { /* the text stays selected: Ctrl+C */ }
  }
});
