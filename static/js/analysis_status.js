// While an analysis is queued or running, ask the server for its state and reload the page once
// the result (or a failure, or the image gate's refusal) is there; show the queue position
// meanwhile. Each request waits on the server until the status changes (`?wait=`, long
// polling: diagnosis.selectors.analysis_wait), and the next one goes out at once, so the result
// shows within about 0.1 s of being stored with one request per change. When the server
// answers without waiting (its waiting places taken: `held` is 0), ask again after a pause
// that grows to 2 s. Nothing is asked while the tab is hidden; showing it asks at once.
// Without JavaScript a refresh shows the result.
(function () {
  "use strict";
  var box = document.getElementById("analysis-result");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-status-url");
  var line = document.getElementById("pending-status");
  var WAIT_S = 10;  // a fresh queue position at least this often
  var pause = 250;
  var asking = false;
  var timer = null;

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

  function again(delay) {
    asking = false;
    clearTimeout(timer);
    if (delay) { timer = setTimeout(ask, delay); } else { ask(); }
  }

  function ask() {
    if (asking) { return; }
    if (document.visibilityState === "hidden") { return; }  // visibilitychange asks again
    asking = true;
    // A background request: waiting is no sign of a person at the screen (accounts.middleware).
    fetch(url + "?wait=" + WAIT_S, {
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
        if (state.held > 0) {
          pause = 250;
          again(0);
        } else {
          again(pause);
          pause = Math.min(pause * 2, 2000);
        }
      })
      .catch(function () { again(5000); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { clearTimeout(timer); ask(); }
  });
  ask();
})();
