// herald demo: a CI dashboard that never polls for builds.
//
// The pattern (from Codeship's and cisimple's dashboards): herald pushes a
// minimal notice, {"build":190852,"project":3,"state":"STARTED"}, on the
// project's private channel; the page fetches that one build from the app's
// API and redraws it. herald.js picks the transport (SSE, else long-poll),
// keeps one cursor across reconnects, so nothing is missed while the server
// is away, and renews the token through authorize().
//
// Stable hooks for tests and tinkering: #conn-state[data-state],
// #transport[data-transport], .project[data-project-id][data-state],
// .build[data-build-id][data-state][data-progress][data-version][data-shown-at],
// #notices .notice[data-seq] (the notice's id, "<epoch>.<seq>")[data-build-id][data-state], #offline-banner.
import { subscribe } from "/herald.js";

const BUILDS_PER_PROJECT = 6;
const NOTICES_KEPT = 40;

const app = {
  projects: new Map(), // id -> {project, builds: Map(id -> build), el}
  notices: 0,
  fetches: 0,
  synced: false, // a full load done after the first connect
  sub: null,
  state: "connecting",
  timings: { subscribed: null, connected: null }, // performance.now() of subscribe() and of the first connect
};
window.heraldDemo = app; // for the curious, in the console

// ---------------------------------------------------------------------------
// HTTP

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = body && body.error && body.error.message;
    throw new HttpError(res.status, msg || "HTTP " + res.status);
  }
  return body;
}

async function getToken() {
  return (await getJSON("/demo/token")).token;
}

// loadAll fetches every project's recent builds: at start, after the first
// connect (closing the gap between the first load and the subscription) and
// on a reset (herald could not replay what we missed).
async function loadAll() {
  const { projects } = await getJSON("/demo/api/projects");
  const lists = await Promise.all(
    projects.map((p) => getJSON(`/demo/api/projects/${p.id}/builds?limit=${BUILDS_PER_PROJECT}`)),
  );
  const container = document.getElementById("projects");
  const seen = new Set();
  projects.forEach((p, i) => {
    seen.add(p.id);
    let entry = app.projects.get(p.id);
    if (!entry) {
      entry = { project: p, builds: new Map(), el: null };
      app.projects.set(p.id, entry);
    }
    entry.project = p;
    const fresh = new Map();
    for (const b of lists[i].builds) {
      const cur = entry.builds.get(b.id);
      const keep = cur && cur.version > b.version ? cur : b; // never go back in time
      fresh.set(b.id, keep);
      markShown(keep);
    }
    entry.builds = fresh;
  });
  for (const id of [...app.projects.keys()]) if (!seen.has(id)) app.projects.delete(id);
  container.replaceChildren(...[...app.projects.values()].map((e) => renderProject(e)));
}

// refetchBuild fetches one build after its notice; notices for a build whose
// fetch is under way are folded into one more fetch. A fetch that fails (the
// server went away) is retried on the next connect.
const inflight = new Map(); // build id -> {again}
const stale = new Set();

async function refetchBuild(id) {
  const running = inflight.get(id);
  if (running) {
    running.again = true;
    return;
  }
  const entry = { again: true };
  inflight.set(id, entry);
  try {
    while (entry.again) {
      entry.again = false;
      app.fetches++;
      const b = await getJSON(`/demo/api/builds/${id}`);
      stale.delete(id);
      upsertBuild(b);
    }
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 404)) stale.add(id); // 404: pruned, nothing to show
  } finally {
    inflight.delete(id);
    renderStats();
  }
}

// shownAt: when the page first showed each build's version (Date.now(), on
// the build's row as data-shown-at), so a test can tell commit → screen.
const shownAt = new Map(); // build id -> {version, at}

function markShown(b) {
  const s = shownAt.get(b.id);
  if (!s || s.version < b.version) shownAt.set(b.id, { version: b.version, at: Date.now() });
}

function upsertBuild(b) {
  const entry = app.projects.get(b.project);
  if (!entry) return;
  const cur = entry.builds.get(b.id);
  if (cur && cur.version >= b.version) return; // an older or the same answer
  if (!cur) {
    const ids = [...entry.builds.keys()];
    if (ids.length >= BUILDS_PER_PROJECT && b.id < Math.min(...ids)) return; // older than what we show
  }
  entry.builds.set(b.id, b);
  markShown(b);
  const ids = [...entry.builds.keys()].sort((x, y) => y - x);
  for (const old of ids.slice(BUILDS_PER_PROJECT)) entry.builds.delete(old);
  renderProject(entry, b.id);
}

// ---------------------------------------------------------------------------
// rendering

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const LABEL = { QUEUED: "Queued", STARTED: "Running", PASSED: "Passed", FAILED: "Failed" };

function renderProject(entry, changedId) {
  const builds = [...entry.builds.values()].sort((a, b) => b.id - a.id);
  const latest = builds[0];
  const active = builds.filter((b) => b.state === "QUEUED" || b.state === "STARTED").length;
  const card = h(
    "article",
    { class: "project", data: { projectId: entry.project.id, state: latest ? latest.state : "" } },
    h(
      "header",
      null,
      h("h3", null, entry.project.name),
      h("span", { class: "repo" }, entry.project.repo),
      h("span", { class: "summary" }, active ? `${active} active` : latest ? `last ${LABEL[latest.state].toLowerCase()}` : "no builds"),
    ),
    h("ol", { class: "builds" }, builds.map((b) => renderBuild(b, b.id === changedId))),
  );
  if (entry.el) entry.el.replaceWith(card);
  entry.el = card;
  return card;
}

function renderBuild(b, changed) {
  let top;
  let bottom;
  if (b.state === "STARTED") {
    top = h("div", { class: "bar", title: `${b.progress}%` }, h("span", { style: `width:${b.progress}%` }));
    bottom = h("span", null, `${b.progress}% · `, h("span", { data: { since: b.started_at } }, since(b.started_at)));
  } else if (b.state === "QUEUED") {
    top = h("span", null, "in queue");
    bottom = h("time", { datetime: b.created_at, data: { ago: b.created_at } }, ago(b.created_at));
  } else {
    top = h("span", null, "took " + duration(b.started_at, b.finished_at));
    const when = b.finished_at || b.created_at;
    bottom = h("time", { datetime: when, data: { ago: when } }, ago(when));
  }
  return h(
    "li",
    {
      class: "build" + (changed ? " changed" : ""),
      data: { buildId: b.id, state: b.state, progress: b.progress, version: b.version, shownAt: shownAt.get(b.id)?.at ?? "" },
    },
    h("span", { class: "badge", data: { state: b.state } }, LABEL[b.state] || b.state),
    h(
      "div",
      { class: "what" },
      h("div", { class: "msg", title: b.message }, h("span", { class: "num" }, "#" + b.number), b.message),
      h("div", { class: "meta" }, h("span", { class: "branch" }, b.branch), " · ", h("code", null, b.commit), " · ", b.author),
    ),
    h("div", { class: "side" }, h("div", { class: "top" }, top), h("div", { class: "bottom" }, bottom)),
  );
}

function renderStats() {
  document.getElementById("stat-notices").textContent = String(app.notices);
  document.getElementById("stat-fetches").textContent = String(app.fetches);
  const cur = app.sub && app.sub.cursor;
  document.getElementById("stat-cursor").textContent = cur === null || cur === undefined ? "—" : cur;
}

function addNotice(n) {
  const list = document.getElementById("notices");
  const d = n.data || {};
  const at = new Date(n.at || Date.now());
  const item = h(
    "li",
    { class: "notice", data: { seq: n.id, buildId: d.build ?? "", state: d.state ?? "", channel: n.channel } },
    h(
      "div",
      { class: "head" },
      // ids are "<epoch>.<seq>": show the seq, the whole id on hover
      h("span", { class: "seq", title: n.id }, "#" + String(n.id).split(".").pop()),
      h("span", { class: "channel" }, n.channel),
      h("span", { class: "at" }, at.toLocaleTimeString([], { hour12: false })),
    ),
    h(
      "code",
      { class: "data" },
      `{"build": ${d.build}, "project": ${d.project}, "state": "`,
      h("span", { class: "state", data: { state: d.state } }, d.state),
      `"}`,
    ),
  );
  list.prepend(item);
  while (list.children.length > NOTICES_KEPT) list.lastElementChild.remove();
  document.getElementById("notices-empty").hidden = true;
}

function addResetNote() {
  const list = document.getElementById("notices");
  list.prepend(h("li", { class: "notice reset" }, "reset: history was gone, reloaded every build"));
}

// ---------------------------------------------------------------------------
// connection state

const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Live",
  unavailable: "Unavailable",
  offline: "Offline",
  failed: "Failed",
  closed: "Closed",
};
const TRANSPORT_TEXT = { sse: "SSE", poll: "long-poll" };
const FAVICON = { connected: "#10b981", connecting: "#f59e0b" };

let countdown = null;

function showState(state, info = {}) {
  app.state = state;
  const pill = document.getElementById("conn-state");
  const label = pill.querySelector(".label");
  pill.dataset.state = state;
  clearInterval(countdown);
  countdown = null;
  if (state === "unavailable" && info.retryIn > 0) {
    const until = Date.now() + info.retryIn;
    const tick = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      label.textContent = s > 0 ? `Unavailable · retry in ${s}s` : "Unavailable · retrying";
    };
    tick();
    countdown = setInterval(tick, 500);
  } else {
    label.textContent = STATE_TEXT[state] || state;
  }
  pill.title = info.error && info.error.message ? info.error.message : "Connection to herald";

  const t = document.getElementById("transport");
  const tr = state === "connected" && info.transport ? info.transport : "";
  t.dataset.transport = tr;
  t.textContent = TRANSPORT_TEXT[tr] || "—";

  document.body.dataset.conn = state;
  const banner = document.getElementById("offline-banner");
  const down = state === "unavailable" || state === "offline" || state === "failed";
  banner.hidden = !down;
  banner.dataset.state = down ? state : "";
  banner.querySelector(".text").textContent =
    state === "offline"
      ? "Your browser is offline."
      : state === "failed"
        ? `herald refused the connection (${(info.error && info.error.message) || "error"}).`
        : "The server is unavailable; reconnecting.";

  const color = FAVICON[state] || "#ef4444"; // Shipscope's icon turns red
  document.getElementById("favicon").href =
    "data:image/svg+xml," +
    encodeURIComponent(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="${color}"/></svg>`);
  document.title = (down ? "⚠ " : "") + "CI dashboard · herald demo";
}

// ---------------------------------------------------------------------------
// notices

function onNotice(n) {
  app.notices++;
  addNotice(n);
  const d = n.data || {};
  if (n.type === "build-state-changed" && Number.isFinite(d.build)) refetchBuild(d.build);
  renderStats();
}

function onReset() {
  addResetNote();
  loadAll().catch(() => {
    app.synced = false; // try again on the next connect
  });
}

function onStateChange(state, info) {
  showState(state, info);
  if (state !== "connected") return;
  if (app.timings.connected === null) app.timings.connected = performance.now();
  if (!app.synced) {
    app.synced = true;
    loadAll().catch(() => {
      app.synced = false;
    });
  }
  for (const id of [...stale]) refetchBuild(id);
}

// ---------------------------------------------------------------------------
// relative times

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function duration(fromIso, toIso) {
  if (!fromIso) return "—";
  const s = Math.max(0, Math.round(((toIso ? Date.parse(toIso) : Date.now()) - Date.parse(fromIso)) / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

function since(iso) {
  return duration(iso, null);
}

setInterval(() => {
  for (const el of document.querySelectorAll("[data-ago]")) el.textContent = ago(el.dataset.ago);
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = since(el.dataset.since);
}, 1000);

// ---------------------------------------------------------------------------
// start

async function boot() {
  showState("connecting");
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      await loadAll();
      break;
    } catch (err) {
      showState("unavailable", { retryIn: delay, error: { message: err.message } });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  showState("connecting");
  let token = null;
  try {
    token = await getToken();
  } catch (_) {
    /* herald.js calls authorize() before connecting */
  }
  const channels = [...app.projects.keys()].map((id) => `private-project-${id}`);
  app.timings.subscribed = performance.now();
  app.sub = subscribe({ url: "", channels, token, authorize: getToken, onNotice, onReset, onStateChange });
}

boot();
