// The dashboard's tiles and live queue refresh themselves: every few seconds, while the tab is
// in view, the part of the page they fill is fetched again and put in place. A background
// request: it does not count as activity for the idle log-out (accounts.middleware).
(function () {
  "use strict";
  var box = document.getElementById("dashboard-live");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-live-url");
  var every = 1000 * (parseFloat(box.getAttribute("data-refresh-s")) || 10);

  function refresh() {
    if (document.visibilityState === "hidden") {
      setTimeout(refresh, every);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { "X-Portal-Background": "1" } })
      .then(function (response) {
        // Sent to log in (the session ended): stop; the page says so when next used.
        if (!response.ok || response.redirected) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        if (window.portalTables) window.portalTables(box);
        setTimeout(refresh, every);
      })
      .catch(function () { /* stop: a reload starts again */ });
  }
  setTimeout(refresh, every);
})();
