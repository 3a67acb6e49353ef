// Ask before a move-out; everything else works without JavaScript.
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });
});
document.querySelectorAll("button.tap").forEach(function (button) {
  button.form.addEventListener("submit", function () { button.textContent = "…"; });
});
