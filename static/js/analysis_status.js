// While an analysis is queued or running, ask the server for its state every 2 seconds, show
// the queue position, and reload the page once the result (or a failure, or the image gate's
// refusal) is there.
(function () {
  "use strict";
  var box = document.getElementById("analysis-result");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var line = document.getElementById("pending-status");

  function show(state) {
    if (!line) { return; }
    if (state.status === "queued") {
      line.textContent = state.queue_position
        ? "Queued: position " + state.queue_position + " in the queue…"
        : "Queued…";
    } else if (state.status === "running") {
      line.textContent = "Running: the classifier is looking at the image…";
    }
  }

  function poll() {
    // A background request: polling is no sign of a person at the screen (accounts.middleware).
    fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Portal-Background": "1" }
    })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (state) {
        if (state.status === "done" || state.status === "failed" ||
            state.status === "not_analysed") {
          window.location.reload();
          return;
        }
        show(state);
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
