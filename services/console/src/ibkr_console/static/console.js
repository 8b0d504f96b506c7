// The console's live updates: server-sent events from /events (NATS events, read by the console);
// an event whose area an element lists in data-live makes the page fetch itself once and swap that element.
(function () {
  "use strict";
  const body = document.body;
  const feed = document.getElementById("feed");
  const state = document.getElementById("live-state");
  let pending = new Set();
  let timer = null;

  function refresh() {
    const areas = pending; pending = new Set(); timer = null;
    const targets = Array.from(document.querySelectorAll("[data-live]")).filter(function (el) {
      return el.id && el.dataset.live.split(" ").some(function (a) { return areas.has(a); });
    });
    if (!targets.length) return;
    fetch(window.location.href, { headers: { "X-Console-Live": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        targets.forEach(function (el) {
          const fresh = doc.getElementById(el.id);
          if (fresh) { el.replaceWith(fresh); }
        });
        body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
      })
      .catch(function (e) { if (state) state.textContent = "refresh failed (" + e + ")"; });
  }

  function show(ev) {
    if (!feed) return;
    const li = document.createElement("li");
    li.className = "fresh";
    li.dataset.type = ev.type;
    const t = document.createElement("time");
    t.textContent = (ev.occurred_at || "").substring(11, 19) + " ";
    const b = document.createElement("b");
    b.textContent = ev.type + " ";
    const s = document.createElement("span");
    s.textContent = ev.summary || "";
    li.append(t, b, s);
    feed.prepend(li);
    setTimeout(function () { li.classList.remove("fresh"); }, 3000);
    while (feed.children.length > 100) feed.lastChild.remove();
  }

  if (body.dataset.events && window.EventSource) {
    const source = new EventSource(body.dataset.events);
    source.onopen = function () { if (state) state.textContent = "live"; body.dataset.live = "open"; };
    source.onerror = function () { if (state) state.textContent = "reconnecting…"; body.dataset.live = "closed"; };
    source.addEventListener("ibkr", function (message) {
      const ev = JSON.parse(message.data);
      // publication to display, on this machine's clock: what the tests hold to 2 s
      window.consoleLatencyMs = window.consoleLatencyMs || {};
      window.consoleLatencyMs[ev.type] = Date.now() - Date.parse(ev.occurred_at);
      show(ev);
      pending.add(ev.area);
      if (!timer) timer = setTimeout(refresh, 150);
    });
  }

  // The session countdown ticks in the page (the expiry time came with it; nothing is asked of the server).
  function tick() {
    document.querySelectorAll(".countdown[data-expires-at]").forEach(function (el) {
      const left = Math.max(0, Math.floor((Date.parse(el.dataset.expiresAt) - Date.now()) / 1000));
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + " h " : "") + m + " min " + s + " s";
      el.classList.toggle("bad", left < 3600);
    });
  }
  tick();
  setInterval(tick, 1000);

  // A form that changes something serious asks first.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);
})();
