// Toolbelt dashboard: what JavaScript adds to pages that work without it.
// - live updates: one EventSource on /events; a server status event updates its badges at
//   once, and any event re-reads the page's live regions ([data-region] elements, by id)
//   from the same URL, so the page shows the new state without a reload;
// - copy buttons ([data-copy="element id"]);
// - confirmations ([data-confirm] on a submit button);
// - file pickers that load a file's text into a textarea ([data-load-into="textarea id"]);
// - expiry countdowns ([data-expires]: the server wrote the time left; this ticks it);
// - log tails ([data-log-stream="url"]): an EventSource of lines appended as they come,
//   the oldest dropped past data-log-max.
"use strict";
(function () {
  function copy(btn) {
    var el = document.getElementById(btn.getAttribute("data-copy"));
    if (!el) return;
    var text = el.value !== undefined && el.tagName !== "CODE" && el.tagName !== "PRE" ? el.value : el.textContent;
    var done = function () { var t = btn.textContent; btn.textContent = "Copied"; setTimeout(function () { btn.textContent = t; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(el); });
    } else { select(el); try { document.execCommand("copy"); done(); } catch (e) { /* selected: the user copies */ } }
  }
  function select(el) {
    var r = document.createRange(); r.selectNodeContents(el);
    var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
  }

  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy]");
    if (b) { e.preventDefault(); copy(b); return; }
    var c = e.target.closest && e.target.closest("[data-confirm]");
    if (c && !window.confirm(c.getAttribute("data-confirm"))) e.preventDefault();
  });

  document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });

  document.querySelectorAll("[data-load-into]").forEach(function (input) {
    input.addEventListener("change", function () {
      var f = input.files && input.files[0];
      var into = document.getElementById(input.getAttribute("data-load-into"));
      if (f && into) f.text().then(function (t) { into.value = t; });
    });
  });

  function left(s) {
    if (s <= 0) return "expired";
    if (s < 60) return "in " + s + " s";
    if (s < 3600) return "in " + Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return "in " + Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
    return "in " + Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
  }
  var counts = document.querySelectorAll("[data-expires]");
  if (counts.length) setInterval(function () {
    counts.forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-expires"));
      if (!isNaN(t)) el.textContent = left(Math.round((t - Date.now()) / 1000));
    });
  }, 1000);

  document.querySelectorAll("[data-log-stream]").forEach(function (box) {
    if (!window.EventSource) return;
    var max = parseInt(box.getAttribute("data-log-max"), 10) || 200;
    var logs = new EventSource(box.getAttribute("data-log-stream"));
    logs.onmessage = function (m) {
      var atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      var line = document.createElement("div");
      line.className = "log-line";
      line.textContent = m.data;
      box.appendChild(line);
      while (box.childElementCount > max) box.removeChild(box.firstElementChild);
      if (atEnd) box.scrollTop = box.scrollHeight;
      var empty = document.getElementById("server-logs-empty");
      if (empty) empty.hidden = true;
    };
    logs.onopen = function () { box.setAttribute("data-log-state", "following"); };
    logs.addEventListener("unavailable", function (m) { box.setAttribute("data-log-state", m.data); });
  });

  var live = document.body.getAttribute("data-live");
  if (!live || !window.EventSource) return;

  var state = document.getElementById("live-state");
  function show(text) { if (state) { state.hidden = false; state.textContent = text; } }

  var timer = null, busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Toolbelt-Region": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-region]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh && fresh.innerHTML !== old.innerHTML) replace(old, fresh);
        });
      })
      .catch(function () { show("Could not refresh; reload the page."); })
      .then(function () { busy = false; if (again) { again = false; soon(); } });
  }
  // A keyboard user inside a region keeps their place: focus moves to the control at the
  // same position in the fresh content (else it would fall back to the top of the page).
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  function replace(old, fresh) {
    var active = document.activeElement, at = -1;
    if (active && active !== old && old.contains(active)) {
      at = Array.prototype.indexOf.call(old.querySelectorAll(FOCUSABLE), active);
    }
    old.innerHTML = fresh.innerHTML;
    var again = at >= 0 ? old.querySelectorAll(FOCUSABLE)[at] : null;
    if (again) again.focus({ preventScroll: true });
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 150); }

  function statusEvent(ev) {
    document.querySelectorAll('[data-server-id="' + ev.server + '"]').forEach(function (el) {
      el.textContent = ev.status;
      el.className = "status " + tone(ev.status);
    });
  }
  function tone(s) {
    if (s === "running") return "good";
    if (s === "error_runtime" || s === "unresponsive") return "bad";
    if (s === "stopped") return "off";
    return "wait";
  }

  var es = new EventSource("/events");
  es.onopen = function () { show("Live"); };
  es.onerror = function () { show("Reconnecting…"); };
  es.onmessage = function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (ev.kind === "server_status") statusEvent(ev);
    if (ev.kind === "metrics" && live !== "overview" && live !== "server") return;
    soon();
  };
})();
