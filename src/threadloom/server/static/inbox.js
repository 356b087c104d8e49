// threadloom inbox: live updates of a thread page from its event stream. Everything works without it;
// this only saves a reload. The HTML it inserts is rendered (and escaped) by the server's templates.
"use strict";

(function () {
  // A message after an action is shown once: drop `?flash=` so a reload does not repeat it.
  var url = new URL(window.location.href);
  if (url.searchParams.has("flash") || url.searchParams.has("answered")) {
    url.searchParams.delete("flash");
    url.searchParams.delete("answered");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  // The list: read again every few seconds while the tab is shown, so new requests appear by themselves.
  var queue = document.getElementById("queue");
  if (queue && window.DOMParser) {
    var refresh = window.setInterval(function () {
      if (document.hidden) return;
      fetch(queue.dataset.refresh, { credentials: "same-origin" }).then(function (response) {
        if (response.redirected || !response.ok) { window.clearInterval(refresh); return null; } // signed out
        return response.text();
      }).then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue");
        if (fresh && fresh.innerHTML !== queue.innerHTML) queue.innerHTML = fresh.innerHTML;
      });
    }, 5000);
  }

  var thread = document.getElementById("thread");
  if (!thread || !window.EventSource) return;
  var timeline = document.getElementById("timeline");
  var panel = document.getElementById("panel");
  var status = document.getElementById("status");
  var reason = document.getElementById("reason");
  var live = document.getElementById("live");
  var source = new EventSource(thread.dataset.stream);

  function setLive(on, text) {
    live.classList.toggle("on", on);
    live.textContent = text;
  }

  source.onopen = function () { setLive(true, "live"); };
  source.onerror = function () { setLive(false, "reconnecting…"); };

  source.addEventListener("append", function (message) {
    var event = JSON.parse(message.data);
    if (document.getElementById("event-" + message.lastEventId)) return; // shown already
    var holder = document.createElement("ol");
    holder.innerHTML = event.html;
    var item = holder.firstElementChild;
    if (!item) return;
    item.classList.add("fresh");
    timeline.appendChild(item);
    if (event.step) refreshSteps();
  });

  // A new model step: fetch the steps section again (what the model got is rendered by the server).
  function refreshSteps() {
    fetch(thread.dataset.steps, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var steps = document.getElementById("steps");
        if (html === null || !steps) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        if (holder.firstElementChild) steps.replaceWith(holder.firstElementChild);
      });
  }

  source.addEventListener("state", function (message) {
    var state = JSON.parse(message.data);
    status.textContent = state.label;
    status.className = "badge status-" + state.status;
    reason.innerHTML = state.reason;
    thread.dataset.status = state.status;
    document.title = (thread.dataset.agent || "thread") + " · " + state.label + " · threadloom";
    if (panel.dataset.pending !== state.pending) {
      panel.dataset.pending = state.pending;
      panel.innerHTML = state.panel;
    }
  });

  source.addEventListener("signed_out", function (message) {
    source.close();
    window.location.href = JSON.parse(message.data).login + "?next=" + encodeURIComponent(window.location.pathname);
  });

  source.addEventListener("end", function () {
    source.close(); // done or failed: nothing more will come (a reconnect would only hear it again)
    setLive(false, "finished");
  });

  source.addEventListener("gone", function () {
    source.close();
    setLive(false, "this thread is gone");
  });
})();
