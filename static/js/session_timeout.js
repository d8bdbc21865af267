// The idle log-out without lost work (accounts.middleware.SessionTimeoutMiddleware logs out a
// session with no activity for SESSION_IDLE_TIMEOUT_S).
//
// - A minute before, the page asks the server how long is left (another tab may have been
//   busy); someone typing or clicking in this page since is present: the session is extended
//   quietly. Otherwise a dialog counts down with "Stay signed in".
// - At the end, a form someone had started is kept in this tab's sessionStorage (never a
//   password or a file; only for the same account; gone when the tab closes or on Log out),
//   the page goes to the log-in, and after logging in again the form is filled in as it was,
//   with a note saying so.
// - A form sent after the session has ended is kept the same way instead of being lost.
// The clock's requests are background ones: asking does not keep the session alive.
(function () {
  "use strict";
  var body = document.body;
  var clockUrl = body.getAttribute("data-session-url");
  if (!clockUrl || !window.fetch || !window.sessionStorage) return;
  var loginUrl = body.getAttribute("data-login-url");
  var user = body.getAttribute("data-user");
  var warnBefore = parseFloat(body.getAttribute("data-warn-before-s")) || 60;
  var deadline = Date.now() + 1000 * parseFloat(body.getAttribute("data-idle-left-s"));
  var lastContact = Date.now(); // when the server last counted this page as activity
  var lastActivity = 0; // when the person last typed or clicked in this page
  var dialog = document.getElementById("idle-warning");
  var countdown = document.getElementById("idle-countdown");
  var timer = null;
  var ticker = null;
  var DRAFT = "portal-draft:";
  var KEEP_DRAFT_MS = 12 * 3600 * 1000;

  ["keydown", "pointerdown", "input"].forEach(function (name) {
    document.addEventListener(name, function () { lastActivity = Date.now(); }, true);
  });

  function csrfToken() {
    var field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function ask(extend) {
    return fetch(clockUrl, {
      method: extend ? "POST" : "GET",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Portal-Background": "1", "X-CSRFToken": csrfToken() }
    }).then(function (response) {
      if (response.status === 401 || response.status === 403) return { signed_in: false };
      if (!response.ok) throw new Error("status " + response.status);
      return response.json();
    });
  }

  // --- drafts: what was typed into the page's forms ----------------------------------------
  function forms() {
    return Array.prototype.filter.call(document.querySelectorAll("main form"), function (form) {
      return (form.getAttribute("method") || "").toLowerCase() === "post";
    });
  }

  function keyFor(index) {
    return DRAFT + window.location.pathname + window.location.search + "#" + index;
  }

  function fieldsOf(form, force) {
    var fields = [];
    var changed = false;
    Array.prototype.forEach.call(form.elements, function (el) {
      var type = (el.type || "").toLowerCase();
      if (!el.name || el.disabled || /^(hidden|password|file|submit|button|reset)$/.test(type)) return;
      if (type === "checkbox" || type === "radio") {
        if (el.checked !== el.defaultChecked) changed = true;
        fields.push({ name: el.name, value: el.value, checked: el.checked });
      } else if (el.tagName === "SELECT") {
        Array.prototype.forEach.call(el.options, function (option) {
          if (option.selected !== option.defaultSelected) changed = true;
        });
        fields.push({ name: el.name, value: el.value });
      } else {
        if (el.value !== el.defaultValue) changed = true;
        fields.push({ name: el.name, value: el.value });
      }
    });
    return changed || force ? fields : null;
  }

  function saveDrafts(force) {
    var kept = false;
    forms().forEach(function (form, index) {
      var fields = fieldsOf(form, force);
      if (!fields) return;
      sessionStorage.setItem(keyFor(index), JSON.stringify({ user: user, at: Date.now(), fields: fields }));
      kept = true;
    });
    return kept;
  }

  function restoreDrafts() {
    var restoredAt = null;
    forms().forEach(function (form, index) {
      var raw = sessionStorage.getItem(keyFor(index));
      if (!raw) return;
      sessionStorage.removeItem(keyFor(index));
      var draft;
      try { draft = JSON.parse(raw); } catch (error) { return; }
      if (draft.user !== user || Date.now() - draft.at > KEEP_DRAFT_MS) return;
      draft.fields.forEach(function (field) {
        Array.prototype.forEach.call(form.elements, function (el) {
          if (el.name !== field.name) return;
          var type = (el.type || "").toLowerCase();
          if (type === "checkbox" || type === "radio") {
            if (el.value === field.value) el.checked = field.checked;
          } else {
            el.value = field.value;
          }
        });
      });
      restoredAt = new Date(draft.at);
    });
    if (!restoredAt) return;
    var note = document.createElement("div");
    note.className = "messages draft-restored";
    note.id = "draft-restored";
    note.setAttribute("role", "status");
    var text = document.createElement("p");
    text.textContent = "You were logged out for inactivity at " +
      restoredAt.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) +
      ". What you had typed is back in the form below: check it, then save.";
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "link";
    discard.textContent = "Discard it";
    discard.addEventListener("click", function () { window.location.reload(); });
    note.appendChild(text);
    note.appendChild(discard);
    var main = document.querySelector("main");
    main.insertBefore(note, main.firstChild);
  }

  function forgetDrafts() {
    Object.keys(sessionStorage).forEach(function (key) {
      if (key.indexOf(DRAFT) === 0) sessionStorage.removeItem(key);
    });
  }

  // --- the clock ------------------------------------------------------------------------------
  function schedule(leftS) {
    deadline = Date.now() + 1000 * leftS;
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(0, 1000 * (leftS - warnBefore)));
  }

  function check() {
    ask(false).then(function (state) {
      if (!state.signed_in || state.idle_left_s <= 0) return expired();
      if (state.idle_left_s > warnBefore + 1) return schedule(state.idle_left_s);
      if (lastActivity > lastContact) return stay();
      warn(state.idle_left_s);
    }).catch(function () { timer = setTimeout(check, 10000); });
  }

  function warn(leftS) {
    deadline = Date.now() + 1000 * leftS;
    var note = document.getElementById("idle-draft-note");
    if (note) note.hidden = !forms().some(function (form) { return fieldsOf(form, false); });
    if (dialog.showModal && !dialog.open) dialog.showModal(); else dialog.setAttribute("open", "");
    clearInterval(ticker);
    ticker = setInterval(tick, 1000);
    tick();
  }

  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    countdown.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    if (left > 0) return;
    clearInterval(ticker);
    ask(false).then(function (state) {
      if (!state.signed_in || state.idle_left_s <= 0) return expired();
      warn(state.idle_left_s); // the server's clock is a moment behind: count on
    }).catch(expired);
  }

  function hide() {
    clearInterval(ticker);
    if (dialog.open) { if (dialog.close) dialog.close(); else dialog.removeAttribute("open"); }
  }

  function stay() {
    ask(true).then(function (state) {
      hide();
      if (!state.signed_in) return expired();
      lastContact = Date.now();
      schedule(state.idle_left_s);
    }).catch(function () { timer = setTimeout(check, 5000); });
  }

  function expired(force) {
    hide();
    clearTimeout(timer);
    saveDrafts(force === true);
    var here = window.location.pathname + window.location.search;
    window.location.assign(loginUrl + "?next=" + encodeURIComponent(here));
  }

  document.getElementById("stay-signed-in").addEventListener("click", stay);
  document.getElementById("idle-log-out").addEventListener("click", function () {
    document.getElementById("log-out").click();
  });
  var logOut = document.getElementById("log-out");
  if (logOut) logOut.form.addEventListener("submit", forgetDrafts);

  // A form sent after the deadline (a computer that slept): ask first; if the session has
  // ended, keep what was typed and log in again instead of losing it.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.closest("main") || form.getAttribute("data-clock-checked") || Date.now() < deadline) return;
    event.preventDefault();
    var submitter = event.submitter;
    ask(false).then(function (state) {
      if (!state.signed_in || state.idle_left_s <= 0) return expired(true);
      form.setAttribute("data-clock-checked", "1");
      if (form.requestSubmit) form.requestSubmit(submitter || undefined); else form.submit();
    }).catch(function () {
      form.setAttribute("data-clock-checked", "1");
      form.submit();
    });
  }, true);

  restoreDrafts();
  schedule((deadline - Date.now()) / 1000);
})();
