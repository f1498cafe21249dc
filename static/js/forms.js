// Controls marked data-submit-on-change submit their form when changed (the
// presence switch). A static file, not an inline onchange: the CSP allows no
// inline event handlers.
document.addEventListener("change", function (e) {
  var el = e.target;
  if (el && el.hasAttribute && el.hasAttribute("data-submit-on-change") && el.form) el.form.submit();
});
