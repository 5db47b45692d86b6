// Toolbelt dashboard, chat page: the message form streams its turn instead of reloading.
// The form is posted (CSRF field included) to its data-stream URL, which answers the same
// server-sent events as POST /api/v1/chats/{id}/messages; they are read with fetch and a
// ReadableStream and drawn into the transcript: text deltas, tool calls and results, and
// for a call held by `ask` "waiting for approval" with Approve/Deny buttons that post the
// Approvals page's own forms. Stop aborts the fetch: the closed stream cancels the turn.
"use strict";
(function () {
  var form = document.getElementById("chat-form");
  if (!form || !window.fetch || !window.ReadableStream || !window.TextDecoder || !window.AbortController) return;
  var log = document.getElementById("chat-transcript");
  var box = document.getElementById("chat-text");
  var send = document.getElementById("chat-send");
  var stop = document.getElementById("chat-stop");
  var csrf = form.querySelector("input[name=csrf]").value;
  var agent = document.querySelector("h1").textContent.replace(/^Chat with /, "");
  var ctl = null;
  stop.hidden = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function json(v) { try { return JSON.stringify(v); } catch (e) { return String(v); } }
  function busy(on) { send.disabled = on; stop.disabled = !on; }

  // The conversation this page is on from now (a new one is named by the reply's header).
  function remember(id) {
    document.getElementById("chat-id").value = id;
    document.getElementById("h-transcript").textContent = "Conversation " + id;
    if (window.history && history.replaceState) history.replaceState(null, "", location.pathname + "?chat=" + encodeURIComponent(id));
  }

  // The page's conversation list, re-read from the server (turn counts, a new conversation).
  function relist() {
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("chat-list");
        var old = document.getElementById("chat-list");
        if (fresh && old) old.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* the list is refreshed on the next load */ });
  }

  // A turn's elements: the previous live turn gives up its ids.
  function newTurn(text) {
    var prev = document.getElementById("chat-live");
    if (prev) {
      prev.querySelectorAll("[id]").forEach(function (e) { e.removeAttribute("id"); });
      prev.removeAttribute("id");
    }
    var empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    var t = el("article", "turn live");
    t.id = "chat-live";
    t.setAttribute("data-state", "running");
    var u = el("p", "user"); u.appendChild(el("span", "who", "You")); u.appendChild(document.createTextNode(" " + text));
    t.appendChild(u);
    t.steps = el("ul", "steps"); t.steps.id = "chat-live-steps"; t.appendChild(t.steps);
    var a = el("p", "answer"); a.appendChild(el("span", "who", agent)); a.appendChild(document.createTextNode(" "));
    t.answer = el("span", "", ""); t.answer.id = "chat-live-answer"; t.answer.setAttribute("data-deltas", "0");
    a.appendChild(t.answer); t.appendChild(a);
    t.status = el("p", "hint usage", "thinking…"); t.status.id = "chat-live-status"; t.appendChild(t.status);
    log.appendChild(t);
    return t;
  }

  function end(t, state, text) {
    t.setAttribute("data-state", state);
    t.status.textContent = text;
  }
  function fail(t, what) {
    var p = el("p", "error", "The turn failed and nothing of it was stored — " + what);
    p.setAttribute("role", "alert"); p.id = "chat-live-error";
    t.appendChild(p);
    end(t, "error", "failed");
  }

  function decide(btn, id, decision, row) {
    var body = new URLSearchParams(); body.set("csrf", csrf);
    btn.disabled = true;
    fetch("/approvals/" + encodeURIComponent(id) + "/" + decision, { method: "POST", credentials: "same-origin", body: body })
      .then(function (r) {
        if (!r.ok) return r.text().then(function (h) { throw new Error(message(h, r.status)); });
        row.textContent = (decision === "approve" ? "approved: " : "denied: ") + row.getAttribute("data-call");
        row.setAttribute("data-decided", decision);
      })
      .catch(function (e) { btn.disabled = false; row.appendChild(el("span", "error-text", " " + e.message)); });
  }

  function approval(t, d) {
    var call = d.tool + "(" + json(d.arguments) + ")";
    var row = el("div", "approval");
    row.id = "chat-approval-" + d.approval_id;
    row.setAttribute("data-call", call);
    row.appendChild(el("span", "", "waiting for approval: " + call + " "));
    [["approve", "Approve", ""], ["deny", "Deny", "danger"]].forEach(function (b) {
      var btn = el("button", b[2], b[1]);
      btn.type = "button"; btn.id = "chat-" + b[0] + "-" + d.approval_id;
      btn.addEventListener("click", function () { decide(btn, d.approval_id, b[0], row); });
      row.appendChild(btn);
    });
    // On the newest call of that tool still waiting for its result.
    var calls = t.steps.querySelectorAll('li.tool[data-tool="' + CSS.escape(d.tool) + '"]:not([data-done])');
    (calls.length ? calls[calls.length - 1] : t.steps).appendChild(row);
    row.querySelector("button").focus();
  }

  function on(t, name, d) {
    if (name === "notice") t.steps.appendChild(el("li", "hint", d.message));
    else if (name === "text") {
      t.answer.textContent += d.delta;
      t.answer.setAttribute("data-deltas", String(+t.answer.getAttribute("data-deltas") + 1));
      t.status.textContent = "answering…";
    } else if (name === "tool_call") {
      var li = el("li", "tool"); li.setAttribute("data-call-id", d.id); li.setAttribute("data-tool", d.name);
      li.appendChild(el("code", "", "→ " + d.name + "(" + json(d.arguments) + ")"));
      t.steps.appendChild(li);
      t.status.textContent = "calling " + d.name + "…";
    } else if (name === "approval_required") {
      approval(t, d);
      t.status.textContent = "waiting for your approval";
    } else if (name === "tool_result") {
      var call = t.steps.querySelector('li.tool[data-call-id="' + CSS.escape(d.id) + '"]') || t.steps;
      call.setAttribute("data-done", "");
      // Decided elsewhere (Approvals page) or timed out: the buttons have no more to do.
      call.querySelectorAll(".approval:not([data-decided]) button").forEach(function (b) { b.remove(); });
      call.appendChild(el("div", "result" + (d.is_error ? " error-text" : ""), "← " + d.text));
      t.status.textContent = "thinking…";
    } else if (name === "done") {
      remember(d.chat_id);
      end(t, "done", "tokens: " + d.usage.input_tokens + " in, " + d.usage.output_tokens + " out");
      relist();
    } else if (name === "error") fail(t, d.code + ": " + d.message);
  }

  function frame(t, f) {
    var name = "message", data = "";
    f.split("\n").forEach(function (l) {
      if (l.indexOf("event:") === 0) name = l.slice(6).trim();
      else if (l.indexOf("data:") === 0) data += l.slice(5).replace(/^ /, "");
    });
    if (!data) return; // a keep-alive comment
    try { on(t, name, JSON.parse(data)); } catch (e) { /* not ours */ }
  }

  function read(t, reader) {
    var dec = new TextDecoder(), buf = "";
    function pump() {
      return reader.read().then(function (x) {
        if (x.done) {
          if (t.getAttribute("data-state") === "running") fail(t, "the connection closed before the turn ended");
          return;
        }
        buf += dec.decode(x.value, { stream: true }).replace(/\r\n/g, "\n");
        for (var i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          frame(t, buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  // The error page's message (a refusal before the turn started).
  function message(html, status) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var m = doc.getElementById("error-message");
    return (m ? m.textContent : "HTTP " + status).trim();
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (ctl) return;
    var text = box.value;
    if (!text.trim()) { box.focus(); return; }
    var t = newTurn(text);
    ctl = new AbortController();
    busy(true);
    fetch(form.getAttribute("data-stream"), {
      method: "POST", credentials: "same-origin", signal: ctl.signal,
      headers: { "Accept": "text/event-stream" }, body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      var type = r.headers.get("content-type") || "";
      if (!r.ok || type.indexOf("text/event-stream") !== 0) return r.text().then(function (h) { fail(t, message(h, r.status)); });
      var id = r.headers.get("x-toolbelt-chat");
      if (id) remember(id);
      box.value = "";
      return read(t, r.body.getReader());
    }).catch(function (err) {
      if (err && err.name === "AbortError") end(t, "stopped", "stopped: the turn was cancelled and nothing of it was stored");
      else fail(t, "the connection failed (" + err + ")");
    }).then(function () { ctl = null; busy(false); box.focus(); });
  });

  stop.addEventListener("click", function () { if (ctl) ctl.abort(); });
})();
