// A form marked data-submit-once disables its button once sent: a second click would only be
// refused by the server (the override is already recorded), so spare the round trip.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-submit-once]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (!button) { return; }
      setTimeout(function () { button.disabled = true; button.textContent = "Sending…"; }, 0);
    });
  });
})();
