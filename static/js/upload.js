// A second click while the first upload is on its way would only be folded into the first by
// the server (the form's one-time token); disabling the button saves the round trip.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  form.addEventListener("submit", function () {
    var button = document.getElementById("upload-button");
    setTimeout(function () { button.disabled = true; button.textContent = "Uploading…"; }, 0);
  });
})();
