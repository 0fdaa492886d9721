// herald.js — browser client for herald (SSE first, long-poll fallback).
// Plain ES module, no dependencies, no build step. Served at /herald.js.
//
//   import { subscribe } from "/herald.js";
//   const sub = subscribe({ url: "", channels: ["private-build-190852"], token,
//                           authorize: async () => (await fetch("/herald-token")).text(),
//                           onNotice: (n) => ..., onReset: ({cursor}) => refetchEverything(),
//                           onStateChange: (state, {transport, error}) => ... });
//   sub.state; sub.transport; sub.cursor; sub.close();
//
// CONNECTION RULES (modelled on pusher-js 2.0's strategy)
//
//  1. Transports, in order of preference: "sse" (EventSource, GET /v1/stream, always with
//     events=message so every notice arrives as a default "message" event; `reset` stays a
//     named event) and "poll" (fetch, GET /v1/poll). "sse" is unsupported when EventSource is
//     missing and "poll" when fetch is missing; unsupported transports are never tried. With
//     no supported transport at all the state is `failed` (code "no_transport").
//  2. Each attempt: if storage holds a non-expired cached transport (key "herald.transport",
//     value {"transport","timestamp"}, valid for cacheTTL = 5 min from when it was written)
//     that still has lives, only that transport is tried. If that cached attempt fails the
//     cache entry is removed and the full strategy runs at once (no backoff). Otherwise the
//     full strategy: start "sse"; if it has not opened within fallbackDelay (2 s), start
//     "poll" in parallel; if "sse" dies before opening, start "poll" at once. The first
//     transport to open wins: every other candidate is closed (no life lost). The winner is
//     written to the cache when it is "sse", and when it is "poll" only if "sse" was tried in
//     that same full attempt and lost (a proxy in the way): never when SSE was skipped for
//     lack of lives, and a connection from the cache does not renew the entry, so a server
//     restart cannot pin a browser to long-poll. A transport with no lives left is skipped.
//  3. Lives: every transport starts with `lives` (2). A life is lost on each unclean close:
//     an EventSource error (before or after open; EventSource cannot tell a network error
//     from a non-200 answer or a server-side close), a poll network error / timeout, a
//     5xx other than 503, an unparseable answer. Closes we cause (loser, close(), offline)
//     cost no life, nor do 429/503 (throttling, including herald's in-band "unavailable"
//     SSE event) or auth/reset answers. Restarts cost none either: an attempt in which no
//     candidate opened (every one failed or none opened within connectTimeout, 15 s: the
//     server or the network is away) gives back the lives it took, and a connection that
//     was stable (rule 4) and then dropped loses none.
//  4. Lives are restored (a) for the winner once its connection has stayed up stableAfter
//     (30 s), which also resets the backoff counter, (b) for every transport when a backoff
//     wait ends and no transport has any life left, and (c) for every transport when the
//     browser comes back online. So an outage never ends in `failed`; only permanent errors do.
//  4b. Probes (engine.io / pusher-js style): while connected over "poll" and EventSource is
//     supported, an SSE connection is tried in the background after probeMin (15 s), then
//     with backoff doubling up to probeMax (5 min), jittered to [1/2, 1]. A probe that opens
//     and stays up probeSettle (1 s) takes over: long-poll is closed (no life lost), notices
//     the probe received meanwhile are delivered through the same dedupe (rule 6), SSE's
//     lives are restored, "sse" is cached and onStateChange("connected", {transport: "sse"})
//     is called again. A probe that fails or is answered "unavailable" (then not before its
//     retryAfter) costs nothing and is retried later; the app never sees it.
//  5. Reconnect: when an established connection is lost after it was stable, reconnect at
//     once (state `connecting`). When it was lost before that, or an attempt fails (no
//     candidate opened), wait a capped, jittered exponential backoff:
//     base = min(backoffMax 30 s, backoffMin 1 s * 2^(n-1)) for the n-th consecutive failure,
//     delay = base/2 + random()*base/2, but at least the server's Retry-After (429/503; for
//     SSE the retryAfter of herald's "unavailable" event, which follows a brief `connected`),
//     in state `unavailable`, then try again (rule 2). Retries keep the state `unavailable`.
//  6. Cursor: one cursor (the last delivered id, "<epoch>.<seq>") across transports. Seqs
//     compare only within one epoch (a bare decimal cursor, from an older server or app
//     storage, compares with any epoch). A notice of the cursor's epoch whose seq <= the
//     cursor's is dropped, so nothing is delivered twice. A notice of another epoch is a new
//     history (the database was restored or promoted): treated as the server's reset (rule 7,
//     cursor := just before that notice), then delivered.
//     A new EventSource resumes with lastEventId=cursor, every poll with cursor=cursor. With
//     no cursor, both start from the server's head (the no-cursor poll answer, at once): SSE
//     asks for it before it opens its EventSource (EventSource keeps the stream's opening id
//     from page code), the head becomes the cursor at once (shared with other tabs), and the
//     stream opens with lastEventId=head, so one that breaks before its first notice resumes
//     there instead of live. If that request fails on the network the attempt fails (rule 5);
//     429/503 wait Retry-After; 401 token_expired re-authorizes; any other answer (a proxy
//     that only routes the stream) opens the stream live. A poll answer's cursor only moves
//     the cursor forward. The first poll request that carries a cursor uses timeout=1 so the
//     poll transport "opens" quickly; later
//     polls use pollTimeout (20 s). An empty long-poll answer that comes back sooner than
//     minPollInterval (1 s) delays the next poll by that much (no hot loop behind bad proxies).
//  7. Reset (SSE `event: reset` or poll 410 code "reset"): cursor := the server's head, then
//     onReset({cursor}); the app must refetch its full state. A reset counts as connected.
//     A poll answer's cursor of another epoch is handled the same way.
//  8. Auth: the token goes as ?token= on EventSource and as "Authorization: Bearer" on fetch.
//     authorize() (optional, async, returns a token) is called before an attempt when there
//     is no token, and before the next attempt after an EventSource that carried a token
//     closed uncleanly, before or after opening (the server closes the stream at the token's
//     exp and then answers 401, which EventSource cannot read). A poll 401 {"error":{"code":"token_expired"}} calls authorize() and retries;
//     a second token_expired before any transport opened again gives `failed`, as does a
//     token_expired without authorize(). authorize() throwing counts as a failed attempt.
//  9. Permanent errors: poll 400/401 (other codes)/403/404/other 4xx except 408/429, and
//     the SSE `event: revoked` frame (data {code, message}; reported as status 403), give
//     state `failed` with error {status, code, message}; everything stops. close() gives
//     state `closed`.
// 10. Offline: when navigator.onLine === false before an attempt, or the window "offline"
//     event fires, all transports are closed and the state is `offline`; the "online" event
//     resets backoff, restores lives and reconnects at once.
// 11. States, reported by onStateChange(state, {transport, error, previous, retryIn}) only on
//     change: connecting -> connected | unavailable | offline | failed; connected ->
//     connecting | unavailable | offline | failed; unavailable -> connected | offline |
//     failed; offline -> connecting; any -> closed on close(). `transport` is "sse" | "poll"
//     | null (null unless connected). While connected, a change of transport (rule 4b) calls
//     onStateChange("connected", ...) again with the new transport.
// 12. shareTabs: true (needs navigator.locks and BroadcastChannel, otherwise ignored): tabs
//     subscribing to the same url+channels elect one leader with a Web Lock; the leader holds
//     the connection and broadcasts notices, resets, cursor and state; the others deliver
//     them (deduped by seq the same way). When the leader tab goes away the next tab takes
//     the lock and connects from the last cursor it saw.
//
// Dependency injection (for tests and unusual environments): transports {sse, poll}
// (factories, see makeSseTransport/makePollTransport for the contract), storage (null
// disables the cache), now, random, setTimeout, clearTimeout, window (online/offline
// events), navigator, EventSource, fetch, AbortController, BroadcastChannel, locks.

export const STORAGE_KEY = "herald.transport";

export const DEFAULTS = Object.freeze({
  fallbackDelay: 2000,
  lives: 2,
  cacheTTL: 5 * 60 * 1000,
  stableAfter: 30000,
  connectTimeout: 15000,
  backoffMin: 1000,
  backoffMax: 30000,
  pollTimeout: 20, // seconds, server maximum 25 (its default); see docs/RECONNECTING.md
  probeMin: 15000, // ms on long-poll before SSE is tried again in the background
  probeMax: 5 * 60 * 1000, // the probe's backoff cap
  probeSettle: 1000, // ms a probing EventSource must stay open before it takes over
  firstPollTimeout: 1, // seconds, first poll carrying a cursor
  pollGrace: 10, // seconds added to the poll timeout before the client aborts the request
  minPollInterval: 1000, // ms; an empty long-poll answer faster than this delays the next poll
  withCredentials: false,
  shareTabs: false,
});

const ORDER = ["sse", "poll"];

// ---------------------------------------------------------------------------------------
// helpers

function pick(options, name, fallback) {
  return Object.prototype.hasOwnProperty.call(options, name) ? options[name] : fallback;
}

function defaultStorage() {
  try {
    const s = globalThis.localStorage;
    return s && typeof s.getItem === "function" ? s : null;
  } catch (_) {
    return null; // SecurityError (blocked storage)
  }
}

function resolveEnv(options) {
  const g = globalThis;
  const st = pick(options, "setTimeout", null) || ((fn, ms) => g.setTimeout(fn, ms));
  const ct = pick(options, "clearTimeout", null) || ((id) => g.clearTimeout(id));
  const fetchFn = pick(options, "fetch", typeof g.fetch === "function" ? g.fetch.bind(g) : undefined);
  return {
    setTimeout: st,
    clearTimeout: ct,
    now: pick(options, "now", null) || (() => Date.now()),
    random: pick(options, "random", null) || Math.random,
    storage: pick(options, "storage", undefined) === undefined ? defaultStorage() : options.storage,
    window: pick(options, "window", typeof g.window !== "undefined" ? g.window : undefined),
    navigator: pick(options, "navigator", typeof g.navigator !== "undefined" ? g.navigator : undefined),
    EventSource: pick(options, "EventSource", typeof g.EventSource !== "undefined" ? g.EventSource : undefined),
    fetch: fetchFn,
    AbortController: pick(options, "AbortController", g.AbortController),
    BroadcastChannel: pick(options, "BroadcastChannel", g.BroadcastChannel),
    locks: pick(options, "locks", g.navigator && g.navigator.locks),
  };
}

function rethrowLater(err) {
  // An exception in an app callback must not break the connection, but must stay visible.
  const q = typeof queueMicrotask === "function" ? queueMicrotask : (f) => Promise.resolve().then(f);
  q(() => {
    throw err;
  });
}

function safeCall(fn, ...args) {
  if (typeof fn !== "function") return;
  try {
    fn(...args);
  } catch (err) {
    rethrowLater(err);
  }
}

// parseId reads an id or cursor: "<epoch>.<seq>", or a bare "<seq>" (epoch ""); null if neither.
function parseId(id) {
  if (id === null || id === undefined) return null;
  const m = /^(?:([a-z0-9]{1,16})\.)?(\d+)$/.exec(String(id));
  return m ? { epoch: m[1] || "", seq: Number(m[2]) } : null;
}

// compareIds orders two ids: <0, 0, >0 within one epoch (a bare one matches any), NaN across
// epochs (another history: not comparable), or when either is not an id.
function compareIds(a, b) {
  const x = parseId(a);
  const y = parseId(b);
  if (!x || !y) return NaN;
  if (x.epoch !== y.epoch && x.epoch !== "" && y.epoch !== "") return NaN;
  return x.seq - y.seq;
}

// epochChanged reports whether id belongs to another epoch than cursor (both known).
function epochChanged(id, cursor) {
  const x = parseId(id);
  const y = parseId(cursor);
  return !!(x && y && x.epoch !== "" && y.epoch !== "" && x.epoch !== y.epoch);
}

// justBefore is the cursor right before id, in its epoch.
function justBefore(id) {
  const x = parseId(id);
  return x.epoch ? x.epoch + "." + Math.max(0, x.seq - 1) : String(Math.max(0, x.seq - 1));
}

/** Builds "channel=a&channel=b" */
function channelQuery(channels) {
  return channels.map((c) => "channel=" + encodeURIComponent(c));
}

function baseUrl(url) {
  return String(url || "").replace(/\/+$/, "");
}

/** Retry-After: delta seconds or an HTTP date; returns milliseconds (0 when absent/invalid). */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value === "") return 0;
  const s = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - now) : 0;
}

/** Capped exponential backoff with jitter in [base/2, base]. n >= 1 */
export function backoffDelay(n, { backoffMin, backoffMax }, random = Math.random) {
  const exp = Math.min(30, Math.max(0, n - 1));
  const base = Math.min(backoffMax, backoffMin * 2 ** exp);
  return Math.round(base / 2 + random() * (base / 2));
}

export function readCache(storage, now, ttl) {
  if (!storage) return null;
  try {
    const raw = storage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const v = JSON.parse(raw);
    if (!v || typeof v.transport !== "string" || typeof v.timestamp !== "number") return null;
    if (now - v.timestamp >= ttl || now < v.timestamp) {
      storage.removeItem(STORAGE_KEY);
      return null;
    }
    return v.transport;
  } catch (_) {
    return null;
  }
}

export function writeCache(storage, transport, now) {
  if (!storage) return;
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify({ transport, timestamp: now }));
  } catch (_) {
    /* quota / disabled storage: caching is only an optimisation */
  }
}

function clearCache(storage) {
  if (!storage) return;
  try {
    storage.removeItem(STORAGE_KEY);
  } catch (_) {
    /* ignore */
  }
}

// ---------------------------------------------------------------------------------------
// transports
//
// A transport factory is called as factory(ctx) and returns {close()}. ctx holds:
//   url (base, no trailing slash), channels, token (string|null), cursor() -> current cursor
//   (string|null), env (resolved environment), options (pollTimeout, firstPollTimeout,
//   pollGrace, minPollInterval, withCredentials), and callbacks:
//   onOpen()            the transport is connected (SSE open / first poll answer)
//   onNotice(obj)       a notice object (the core dedupes by seq)
//   onReset(head)       the server reset the cursor to head
//   onCursor(cursor)    the poll answer's cursor (moves the core cursor forward only)
//   onHead(head)        SSE learnt the head before opening (the cursor, when it has none)
//   onClose(info)       the transport ended by itself; info.kind is one of
//                       "unclean" (costs a life), "clean", "throttle" ({retryAfter} ms),
//                       "auth" (401 token_expired), "fatal" (permanent 4xx);
//                       plus status, code, error.
// After close() (or after it called onClose) a transport must not call back any more; the
// core ignores late callbacks anyway.
// A factory may carry isSupported(env) -> boolean.

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return null;
  }
}

// learnHead asks for the head (a long-poll without a cursor answers at once with it) and
// returns {head} | {close: info} | {} (no head: open live as without fetch). The stream's
// opening id is the same position, but EventSource keeps it from page code.
async function learnHead(ctx, isDone, setAbort) {
  const { env } = ctx;
  const headers = { Accept: "application/json" };
  if (ctx.token) headers.Authorization = "Bearer " + ctx.token;
  const ctrl = env.AbortController ? new env.AbortController() : null;
  setAbort(ctrl);
  let timedOut = false;
  const timer = env.setTimeout ? env.setTimeout(() => ((timedOut = true), ctrl && ctrl.abort()), (ctx.options.pollGrace || 10) * 1000) : null;
  let res, body;
  try {
    res = await env.fetch(ctx.url + "/v1/poll?" + channelQuery(ctx.channels).join("&"), {
      method: "GET",
      headers,
      cache: "no-store",
      credentials: ctx.options.withCredentials ? "include" : "same-origin",
      signal: ctrl ? ctrl.signal : undefined,
    });
    body = parseJson(await res.text());
  } catch (e) {
    if (isDone()) return {};
    const error = timedOut ? { code: "timeout", message: "head request timed out" } : { code: "network", message: "head: " + String((e && e.message) || e) };
    return { close: { kind: "unclean", error } };
  } finally {
    if (timer !== null) env.clearTimeout(timer);
  }
  const status = res.status;
  const e = body && body.error && typeof body.error === "object" ? body.error : {};
  const error = { status, code: e.code, message: e.message || "HTTP " + status };
  if (status === 200 && body && parseId(body.cursor)) return { head: String(body.cursor) };
  if (status === 429 || status === 503) {
    const ra = res.headers && typeof res.headers.get === "function" ? res.headers.get("Retry-After") : null;
    return { close: { kind: "throttle", status, code: e.code, error, retryAfter: parseRetryAfter(ra, env.now ? env.now() : Date.now()) } };
  }
  if (status === 401 && e.code === "token_expired") return { close: { kind: "auth", status, code: e.code, error } };
  return {}; // e.g. a proxy that only routes the stream: open live, as before
}

export function makeSseTransport(ctx) {
  const cur = ctx.cursor();
  const st = { done: false };
  let es = null;
  let ctrl = null;
  if ((cur === null || cur === undefined) && typeof ctx.env.fetch === "function") {
    // No cursor: learn the head first and open from it, so a stream that breaks before its
    // first notice resumes from there (rule 6) instead of starting live again.
    learnHead(ctx, () => st.done, (c) => (ctrl = c)).then((r) => {
      if (st.done) return;
      if (r.close) {
        st.done = true;
        return ctx.onClose(r.close);
      }
      if (r.head && ctx.onHead) ctx.onHead(r.head);
      if (!st.done) es = openEventSource(ctx, r.head || null, st);
    }).catch((e) => {
      if (!st.done) (st.done = true), ctx.onClose({ kind: "unclean", error: { code: "transport_error", message: String(e) } });
    });
  } else es = openEventSource(ctx, cur, st);
  return {
    close() {
      st.done = true;
      if (ctrl) ctrl.abort();
      if (es) es.close();
    },
  };
}

// openEventSource opens the stream from cur (null: live); st.done silences it once closed.
function openEventSource(ctx, cur, st) {
  const ES = ctx.env.EventSource;
  const q = channelQuery(ctx.channels);
  q.push("events=message");
  if (cur !== null && cur !== undefined) q.push("lastEventId=" + encodeURIComponent(cur));
  if (ctx.token) q.push("token=" + encodeURIComponent(ctx.token));
  const es = new ES(ctx.url + "/v1/stream?" + q.join("&"), ctx.options.withCredentials ? { withCredentials: true } : undefined);
  es.onopen = () => {
    if (!st.done) ctx.onOpen();
  };
  es.onmessage = (ev) => {
    if (st.done) return;
    const obj = parseJson(ev.data);
    if (obj && typeof obj === "object") ctx.onNotice(obj);
  };
  es.addEventListener("reset", (ev) => {
    if (st.done) return;
    const obj = parseJson(ev.data);
    ctx.onReset(obj && obj.cursor !== undefined ? obj.cursor : null);
  });
  // herald's in-band 429/503 (any non-200 would be fatal to EventSource): come back after retryAfter.
  es.addEventListener("unavailable", (ev) => {
    if (st.done) return;
    st.done = true;
    es.close();
    const obj = parseJson(ev.data) || {};
    const e = obj.error && typeof obj.error === "object" ? obj.error : {};
    const status = Number(obj.status) || 503;
    ctx.onClose({
      kind: "throttle",
      status,
      code: e.code,
      error: { status, code: e.code || "unavailable", message: e.message || "HTTP " + status },
      retryAfter: Math.max(0, Number(obj.retryAfter) || 0) * 1000,
    });
  });
  // The server took the grant back (token revoked, or the app's auth URL
  // now refuses): a permanent end, not a network drop, so no reconnect.
  es.addEventListener("revoked", (ev) => {
    if (st.done) return;
    st.done = true;
    es.close();
    const obj = parseJson(ev.data) || {};
    const error = { status: 403, code: obj.code || "revoked", message: obj.message || "access revoked by the server" };
    ctx.onClose({ kind: "fatal", status: 403, code: error.code, error });
  });
  es.onerror = () => {
    if (st.done) return;
    st.done = true;
    es.close(); // we reconnect ourselves, with a fresh cursor/token and the lives rules
    ctx.onClose({
      kind: "unclean",
      error: { code: "sse_error", message: "EventSource failed or the stream was closed" },
    });
  };
  return es;
}
makeSseTransport.isSupported = (env) => typeof env.EventSource === "function";

export function makePollTransport(ctx) {
  const { env, options } = ctx;
  let done = false;
  let ctrl = null;
  let timer = null;
  let opened = false;

  const stop = () => {
    done = true;
    if (timer !== null) env.clearTimeout(timer);
    timer = null;
    if (ctrl) {
      try {
        ctrl.abort();
      } catch (_) {
        /* ignore */
      }
    }
  };
  const end = (info) => {
    if (done) return;
    stop();
    ctx.onClose(info);
  };
  const open = () => {
    if (!opened) {
      opened = true;
      ctx.onOpen();
    }
    return !done;
  };

  async function loop() {
    while (!done) {
      const cur = ctx.cursor();
      const q = channelQuery(ctx.channels);
      let wait = 0;
      if (cur !== null && cur !== undefined) {
        wait = opened ? options.pollTimeout : options.firstPollTimeout;
        q.push("cursor=" + encodeURIComponent(cur), "timeout=" + wait);
      }
      const headers = { Accept: "application/json" };
      if (ctx.token) headers.Authorization = "Bearer " + ctx.token;
      ctrl = env.AbortController ? new env.AbortController() : null;
      let timedOut = false;
      timer = env.setTimeout(() => {
        timedOut = true;
        if (ctrl) ctrl.abort();
      }, (wait + options.pollGrace) * 1000);
      const started = env.now();
      let res;
      let text;
      try {
        res = await env.fetch(ctx.url + "/v1/poll?" + q.join("&"), {
          method: "GET",
          headers,
          cache: "no-store",
          credentials: options.withCredentials ? "include" : "same-origin",
          signal: ctrl ? ctrl.signal : undefined,
        });
        text = await res.text();
      } catch (e) {
        if (done) return;
        return end({
          kind: "unclean",
          error: timedOut
            ? { code: "timeout", message: "poll request timed out" }
            : { code: "network", message: String((e && e.message) || e) },
        });
      } finally {
        if (timer !== null) env.clearTimeout(timer);
        timer = null;
      }
      if (done) return;
      const status = res.status;
      const body = parseJson(text);
      const apiError = body && body.error && typeof body.error === "object" ? body.error : null;
      const code = apiError ? apiError.code : undefined;
      const error = { status, code, message: (apiError && apiError.message) || "HTTP " + status };
      if (status === 200) {
        if (!body || !Array.isArray(body.events)) {
          return end({ kind: "unclean", status, error: { status, code: "bad_response", message: "unexpected poll answer" } });
        }
        if (!open()) return;
        for (const ev of body.events) {
          if (done) return;
          if (ev && typeof ev === "object") ctx.onNotice(ev);
        }
        if (done) return;
        // after the notices: the answer's cursor is the last seq returned (or the head)
        if (body.cursor !== undefined && body.cursor !== null) ctx.onCursor(String(body.cursor));
        if (!body.events.length && wait > 0 && env.now() - started < options.minPollInterval) {
          // an empty answer well before the timeout (misbehaving proxy/cache): don't spin
          await new Promise((resolve) => {
            timer = env.setTimeout(resolve, options.minPollInterval);
          });
          timer = null;
        }
      } else if (status === 410) {
        if (!open()) return;
        ctx.onReset(body && body.cursor !== undefined && body.cursor !== null ? String(body.cursor) : null);
      } else if (status === 429 || status === 503) {
        const ra = res.headers && typeof res.headers.get === "function" ? res.headers.get("Retry-After") : null;
        return end({ kind: "throttle", status, code, error, retryAfter: parseRetryAfter(ra, env.now()) });
      } else if (status === 401 && code === "token_expired") {
        return end({ kind: "auth", status, code, error });
      } else if (status >= 400 && status < 500 && status !== 408) {
        return end({ kind: "fatal", status, code, error });
      } else {
        return end({ kind: "unclean", status, code, error });
      }
    }
  }

  Promise.resolve().then(loop).catch((e) => end({ kind: "unclean", error: { code: "internal", message: String(e) } }));
  return { close: stop };
}
makePollTransport.isSupported = (env) => typeof env.fetch === "function";

// ---------------------------------------------------------------------------------------
// the connection engine (one tab, one connection)

function createConnection(options, env, hooks) {
  const o = {};
  for (const k of Object.keys(DEFAULTS)) o[k] = pick(options, k, DEFAULTS[k]);
  const url = baseUrl(options.url);
  const channels = Array.isArray(options.channels) ? options.channels.map(String) : [];
  const authorize = typeof options.authorize === "function" ? options.authorize : null;
  const factories = Object.assign({ sse: makeSseTransport, poll: makePollTransport }, options.transports || {});
  const order = ORDER.filter((n) => {
    const f = factories[n];
    if (typeof f !== "function") return false;
    return typeof f.isSupported === "function" ? !!f.isSupported(env) : true;
  });

  let token = options.token || null;
  let cursor = options.cursor !== undefined && options.cursor !== null ? String(options.cursor) : null;
  let state = "initialized";
  let transport = null;
  let lastError = null;
  let needsAuth = false;
  let authRetried = false;
  let failures = 0;
  let stable = false;
  let closed = false;
  let gen = 0;
  let attempt = null;
  let active = null;
  let retryTimer = null;
  let stableTimer = null;
  let probe = null; // an EventSource tried in the background while on long-poll
  let probeTimer = null;
  let probeFailures = 0;
  const lives = {};
  const restoreLives = () => {
    for (const n of ORDER) lives[n] = o.lives;
  };
  restoreLives();

  const setT = (fn, ms) => env.setTimeout(fn, ms);
  const clearT = (id) => {
    if (id !== null && id !== undefined) env.clearTimeout(id);
  };

  function setState(next, extra = {}, force = false) {
    if (next === state && !force) return;
    const previous = state;
    state = next;
    safeCall(hooks.onStateChange, next, Object.assign({ transport, error: lastError, previous }, extra));
  }

  function isOffline() {
    return !!(env.navigator && env.navigator.onLine === false);
  }

  // ----- cursor & delivery
  function deliver(obj) {
    if (parseId(obj.id)) {
      if (cursor !== null && epochChanged(obj.id, cursor)) doReset(justBefore(obj.id)); // a new history
      else if (cursor !== null && compareIds(obj.id, cursor) <= 0) return; // duplicate (replay after a switch)
      cursor = String(obj.id);
    }
    safeCall(hooks.onNotice, obj);
  }
  function doReset(head) {
    cursor = head === null || head === undefined ? null : String(head);
    safeCall(hooks.onReset, { cursor });
  }
  function advance(c) {
    if (c === null || c === undefined || !parseId(c)) return;
    if (cursor !== null && epochChanged(c, cursor)) return doReset(String(c)); // a new history
    // forward only; a bare cursor takes the server's epoch at the same seq
    const d = cursor === null ? 1 : compareIds(c, cursor);
    if (d > 0 || (d === 0 && String(c) !== cursor && parseId(cursor).epoch === "")) {
      cursor = String(c);
      hooks.onCursor && hooks.onCursor(cursor);
    }
  }

  // ----- transports
  function endTransport(t) {
    if (t.ended) return;
    t.ended = true;
    if (t.handle) {
      try {
        t.handle.close();
      } catch (_) {
        /* ignore */
      }
    }
  }

  function startTransport(name, a) {
    const t = { name, attempt: a, handle: null, open: false, ended: false, usedToken: !!token, probe: false, buffer: [], timer: null };
    if (a) a.running.push(t);
    else t.probe = true;
    const live = () => active === t && !t.ended;
    // A probe's notices wait until it takes over (promote), then go through the same dedupe.
    const held = () => t.probe && probe === t && !t.ended;
    const ctx = {
      url,
      channels: channels.slice(),
      token,
      cursor: () => cursor,
      env,
      options: {
        pollTimeout: o.pollTimeout,
        firstPollTimeout: o.firstPollTimeout,
        pollGrace: o.pollGrace,
        minPollInterval: o.minPollInterval,
        withCredentials: o.withCredentials,
      },
      onOpen: () => (t.probe ? probeOpened(t) : onOpen(t)),
      onNotice: (obj) => {
        if (!obj || typeof obj !== "object") return;
        if (live()) deliver(obj);
        else if (held()) t.buffer.push({ obj });
      },
      onReset: (head) => {
        if (live()) doReset(head);
        else if (held()) t.buffer.push({ reset: head });
      },
      onCursor: (c) => {
        if (live()) advance(c);
      },
      // SSE learnt the head before opening: with no cursor yet, it becomes the cursor at once,
      // so a stream that breaks before its first notice (or before it opened) resumes there.
      onHead: (h) => {
        if (!t.ended && cursor === null && parseId(h)) {
          cursor = String(h);
          hooks.onCursor && hooks.onCursor(cursor);
        }
      },
      onClose: (info) => (t.probe && active !== t ? probeFailed(t, info || {}) : onTransportClose(t, info || {})),
    };
    if (t.probe) {
      probe = t;
      t.timer = setT(() => probeFailed(t, { kind: "unclean" }), o.connectTimeout);
    }
    try {
      t.handle = factories[name](ctx);
    } catch (e) {
      ctx.onClose({ kind: "unclean", error: { code: "transport_error", message: String((e && e.message) || e) } });
      return;
    }
    if (t.ended && t.handle) {
      try {
        t.handle.close();
      } catch (_) {
        /* ignore */
      }
    }
  }

  function launchNext(a) {
    clearT(a.fallbackTimer);
    a.fallbackTimer = null;
    const name = a.pending.shift();
    if (!name) return;
    if (a.pending.length) {
      a.fallbackTimer = setT(() => {
        a.fallbackTimer = null;
        if (attempt === a && !a.done) launchNext(a);
      }, o.fallbackDelay);
    }
    startTransport(name, a);
  }

  function finishAttempt(a) {
    a.done = true;
    clearT(a.fallbackTimer);
    clearT(a.connectTimer);
    a.fallbackTimer = a.connectTimer = null;
    if (attempt === a) attempt = null;
  }

  function onOpen(t) {
    if (t.ended || t.open || closed) return;
    const a = t.attempt;
    if (attempt !== a || a.done) {
      endTransport(t);
      return;
    }
    t.open = true;
    finishAttempt(a);
    for (const other of a.running) if (other !== t) endTransport(other); // the loser
    active = t;
    transport = t.name;
    authRetried = false;
    lastError = null;
    // Cache long-poll only when SSE was tried in this attempt and lost (failed, or slower than
    // poll): a proxy in the way. Not when SSE was skipped for lack of lives (server restarts
    // cost those), and not again from the cache itself, so the entry expires cacheTTL after SSE
    // last failed.
    if (t.name !== "poll" || (!a.fromCache && a.plan.includes("sse"))) writeCache(env.storage, t.name, env.now());
    armStable(t);
    setState("connected");
    scheduleProbe(0);
  }

  function armStable(t) {
    stable = false;
    clearT(stableTimer);
    stableTimer = setT(() => {
      stableTimer = null;
      if (active !== t) return;
      stable = true;
      failures = 0;
      lives[t.name] = o.lives;
    }, o.stableAfter);
  }

  // ----- SSE probes while on long-poll (as pusher-js and engine.io try the better transport again)
  function scheduleProbe(minDelay) {
    clearT(probeTimer);
    probeTimer = null;
    if (closed || probe || !active || active.name !== "poll" || !order.includes("sse")) return;
    const base = Math.min(o.probeMax, o.probeMin * 2 ** Math.min(20, probeFailures));
    const delay = Math.max(minDelay || 0, Math.round(base / 2 + env.random() * (base / 2)));
    const my = gen;
    probeTimer = setT(() => {
      probeTimer = null;
      if (my === gen && !closed && !probe && active && active.name === "poll") startTransport("sse", null);
    }, delay);
  }

  function probeOpened(p) {
    if (probe !== p || p.ended || p.open) return;
    p.open = true;
    clearT(p.timer);
    // Open is not enough (herald's in-band "unavailable" answer opens too): it must stay up.
    p.timer = setT(() => promote(p), o.probeSettle);
  }

  function promote(p) {
    p.timer = null;
    if (probe !== p || p.ended || closed) return;
    probe = null;
    if (!active || active.name !== "poll") return endTransport(p);
    endTransport(active); // closes we cause cost no life
    active = p;
    transport = p.name;
    probeFailures = 0;
    lives[p.name] = o.lives;
    writeCache(env.storage, p.name, env.now());
    const held = p.buffer;
    p.buffer = [];
    for (const h of held) {
      if (active !== p) return;
      if (h.obj) deliver(h.obj);
      else doReset(h.reset);
    }
    armStable(p);
    setState("connected", {}, true); // same state, new transport
  }

  function probeFailed(p, info) {
    clearT(p.timer);
    p.timer = null;
    endTransport(p);
    if (probe !== p) return;
    probe = null;
    probeFailures++;
    scheduleProbe(info.kind === "throttle" ? info.retryAfter || 0 : 0);
  }

  function onTransportClose(t, info) {
    if (t.ended) return;
    endTransport(t);
    if (closed || state === "failed") return;
    const kind = info.kind || "unclean";
    lastError = info.error || (info.status ? { status: info.status, code: info.code } : lastError);
    if (kind === "unclean") {
      // A connection that stayed up stableAfter and then dropped says nothing against its
      // transport (a server restart, a deploy): no life lost.
      if (!(active === t && stable)) {
        lives[t.name] = Math.max(0, lives[t.name] - 1);
        if (active !== t && t.attempt) t.attempt.charged[t.name] = (t.attempt.charged[t.name] || 0) + 1;
      }
      if (t.name === "sse" && t.usedToken && authorize) needsAuth = true;
    }
    if (kind === "fatal") return fail(lastError);
    if (kind === "auth") {
      if (!authorize || authRetried) return fail(lastError);
      authRetried = true;
      needsAuth = true;
      teardown();
      connect();
      return;
    }
    if (active === t) {
      // an established connection was lost
      active = null;
      transport = null;
      clearT(stableTimer);
      stableTimer = null;
      const wasStable = stable;
      stable = false;
      if (kind !== "throttle" && wasStable) {
        setState("connecting");
        connect();
      } else {
        scheduleRetry(kind === "throttle" ? info.retryAfter || 0 : 0);
      }
      return;
    }
    const a = t.attempt;
    if (attempt !== a || a.done) return;
    if (kind === "throttle") a.retryAfter = Math.max(a.retryAfter, info.retryAfter || 0);
    if (a.pending.length) {
      launchNext(a); // fail fast to the next transport
      return;
    }
    if (a.running.some((x) => !x.ended)) return; // another candidate is still trying
    attemptFailed(a);
  }

  function attemptFailed(a) {
    finishAttempt(a);
    // No candidate opened: the server (or the network) is away, which says nothing about any
    // one transport. Give back the lives this attempt took.
    for (const n of Object.keys(a.charged)) lives[n] = Math.min(o.lives, lives[n] + a.charged[n]);
    if (a.fromCache && !a.retryAfter) {
      clearCache(env.storage);
      connect();
      return;
    }
    if (a.fromCache) clearCache(env.storage);
    scheduleRetry(a.retryAfter);
  }

  function attemptTimedOut(a) {
    if (attempt !== a || a.done) return;
    a.pending = [];
    lastError = { code: "timeout", message: "no transport connected within " + o.connectTimeout + " ms" };
    for (const t of a.running) if (!t.ended) endTransport(t); // no life lost: nothing opened (attemptFailed)
    attemptFailed(a);
  }

  function startAttempt(plan, fromCache) {
    const a = { plan: plan.slice(), pending: plan.slice(), running: [], charged: {}, fromCache, fallbackTimer: null, connectTimer: null, retryAfter: 0, done: false };
    attempt = a;
    a.connectTimer = setT(() => attemptTimedOut(a), o.connectTimeout);
    launchNext(a);
  }

  function teardown() {
    gen++;
    if (attempt) {
      const a = attempt;
      finishAttempt(a);
      for (const t of a.running) endTransport(t);
    }
    if (active) endTransport(active);
    if (probe) {
      clearT(probe.timer);
      endTransport(probe);
      probe = null;
    }
    active = null;
    transport = null;
    stable = false;
    clearT(retryTimer);
    clearT(stableTimer);
    clearT(probeTimer);
    retryTimer = stableTimer = probeTimer = null;
  }

  function scheduleRetry(minDelay) {
    teardown();
    failures++;
    const delay = Math.max(minDelay || 0, backoffDelay(failures, o, env.random));
    setState("unavailable", { retryIn: delay });
    const my = gen;
    retryTimer = setT(() => {
      retryTimer = null;
      if (my !== gen || closed) return;
      if (order.every((n) => lives[n] <= 0)) restoreLives(); // a new backoff cycle
      connect();
    }, delay);
  }

  function fail(error) {
    teardown();
    lastError = error || lastError;
    removeListeners();
    setState("failed");
  }

  async function connect() {
    if (closed || state === "failed") return;
    clearT(retryTimer);
    retryTimer = null;
    const my = ++gen;
    if (isOffline()) {
      teardown();
      setState("offline");
      if (!env.window || typeof env.window.addEventListener !== "function") {
        // no online event to wait for: look again later
        const g = gen;
        retryTimer = setT(() => {
          if (g === gen && !closed) connect();
        }, o.backoffMax);
      }
      return;
    }
    if (!order.length) {
      return fail({ code: "no_transport", message: "neither EventSource nor fetch is available" });
    }
    if (state !== "unavailable") setState("connecting");
    if (authorize && (!token || needsAuth)) {
      let fresh;
      try {
        fresh = await authorize();
      } catch (e) {
        if (my !== gen || closed || state === "failed") return;
        lastError = { code: "authorize_failed", message: String((e && e.message) || e) };
        scheduleRetry(0);
        return;
      }
      if (my !== gen || closed || state === "failed") return;
      needsAuth = false;
      if (fresh) token = String(fresh);
    }
    if (closed || state === "failed") return;
    const alive = order.filter((n) => lives[n] > 0);
    if (!alive.length) {
      scheduleRetry(0);
      return;
    }
    const cached = readCache(env.storage, env.now(), o.cacheTTL);
    if (cached && alive.includes(cached)) startAttempt([cached], true);
    else startAttempt(alive, false);
  }

  // ----- online / offline
  const onOffline = () => {
    if (closed || state === "failed") return;
    teardown();
    setState("offline");
  };
  const onOnline = () => {
    if (closed || state === "failed" || state !== "offline") return;
    failures = 0;
    restoreLives();
    connect();
  };
  const win = env.window && typeof env.window.addEventListener === "function" ? env.window : null;
  if (win) {
    win.addEventListener("offline", onOffline);
    win.addEventListener("online", onOnline);
  }
  function removeListeners() {
    if (win) {
      win.removeEventListener("offline", onOffline);
      win.removeEventListener("online", onOnline);
    }
  }

  // start asynchronously so the caller holds the handle before the first callback
  Promise.resolve().then(() => {
    if (!closed && state === "initialized") connect();
  });

  return {
    close() {
      if (closed) return;
      teardown();
      removeListeners();
      closed = true;
      setState("closed");
    },
    get state() {
      return state;
    },
    get transport() {
      return transport;
    },
    get cursor() {
      return cursor;
    },
    get lives() {
      return Object.assign({}, lives);
    },
    get error() {
      return lastError;
    },
  };
}

// ---------------------------------------------------------------------------------------
// shareTabs: one leader tab per url+channels (Web Locks), notices fanned out (BroadcastChannel)

function createShared(options, env) {
  const channels = Array.isArray(options.channels) ? options.channels.map(String) : [];
  const key = "herald:" + baseUrl(options.url) + "|" + channels.slice().sort().join(",");
  const bc = new env.BroadcastChannel(key);
  const abort = env.AbortController ? new env.AbortController() : null;
  let cursor = options.cursor !== undefined && options.cursor !== null ? String(options.cursor) : null;
  let state = "initialized";
  let transport = null;
  let lastError = null;
  let engine = null; // set while this tab is the leader
  let release = null;
  let closed = false;

  const setState = (next, info, force = false) => {
    if (next === state && !force) return;
    const previous = state;
    state = next;
    safeCall(options.onStateChange, next, Object.assign({ transport, error: lastError, previous }, info || {}));
  };
  const advance = (c) => {
    if (c === null || c === undefined || !parseId(c)) return;
    // the leader tab reports resets itself; only move forward within an epoch (or into the
    // first epoch learnt after a bare cursor)
    const d = cursor === null ? 1 : compareIds(c, cursor);
    if (d > 0 || (d === 0 && parseId(cursor).epoch === "")) cursor = String(c);
  };
  const post = (msg) => {
    try {
      bc.postMessage(msg);
    } catch (_) {
      /* ignore */
    }
  };
  const snapshot = () => ({ t: "state", state: engine ? engine.state : state, transport: engine ? engine.transport : transport, error: lastError, cursor });

  bc.onmessage = (ev) => {
    const m = ev && ev.data;
    if (!m || closed) return;
    if (m.t === "hello") {
      if (engine) post(snapshot());
      return;
    }
    if (engine) return; // the leader ignores other tabs' traffic
    if (m.t === "notice") {
      const id = m.obj && m.obj.id;
      if (parseId(id)) {
        if (cursor !== null && epochChanged(id, cursor)) {
          cursor = justBefore(id); // a new history: as the server's reset
          safeCall(options.onReset, { cursor });
        } else if (cursor !== null && compareIds(id, cursor) <= 0) return;
        cursor = String(id);
      }
      safeCall(options.onNotice, m.obj);
    } else if (m.t === "reset") {
      cursor = m.cursor === null || m.cursor === undefined ? null : String(m.cursor);
      safeCall(options.onReset, { cursor });
    } else if (m.t === "cursor") {
      advance(m.cursor);
    } else if (m.t === "state") {
      advance(m.cursor);
      const switched = transport !== (m.transport || null);
      transport = m.transport || null;
      lastError = m.error || null;
      setState(m.state === "closed" ? "connecting" : m.state, undefined, switched); // a closing leader hands over
    }
  };

  const lead = () =>
    new Promise((resolve) => {
      if (closed) return resolve();
      release = resolve;
      const opts = Object.assign({}, options, {
        cursor,
        shareTabs: false,
        onNotice: (obj) => {
          cursor = engine ? engine.cursor : cursor;
          post({ t: "notice", obj });
          safeCall(options.onNotice, obj);
        },
        onReset: (r) => {
          cursor = r.cursor;
          post({ t: "reset", cursor: r.cursor });
          safeCall(options.onReset, r);
        },
        onStateChange: (s, info) => {
          const switched = transport !== info.transport;
          transport = info.transport;
          lastError = info.error || null;
          post({ t: "state", state: s, transport, error: lastError, cursor });
          setState(s, info, switched);
        },
      });
      engine = createConnection(opts, env, {
        onStateChange: opts.onStateChange,
        onNotice: opts.onNotice,
        onReset: opts.onReset,
        onCursor: (c) => {
          cursor = c;
          post({ t: "cursor", cursor: c });
        },
      });
    });

  Promise.resolve().then(() => {
    if (closed) return;
    setState("connecting");
    post({ t: "hello" });
    const p = env.locks.request(key, abort ? { signal: abort.signal } : {}, lead);
    if (p && typeof p.catch === "function") p.catch(() => {}); // AbortError after close()
  });

  return {
    close() {
      if (closed) return;
      if (engine) {
        engine.close(); // broadcasts "closed": followers go back to connecting and one takes over
        engine = null;
      }
      closed = true;
      if (release) release();
      if (abort) abort.abort();
      try {
        bc.close();
      } catch (_) {
        /* ignore */
      }
      transport = null;
      setState("closed");
    },
    get state() {
      return state;
    },
    get transport() {
      return engine ? engine.transport : transport;
    },
    get cursor() {
      return engine ? engine.cursor : cursor;
    },
    get leader() {
      return !!engine;
    },
  };
}

// ---------------------------------------------------------------------------------------

/**
 * subscribe({url, channels, token, authorize, onNotice, onReset, onStateChange, cursor,
 *            transports, storage, now, random, setTimeout, clearTimeout, window, navigator,
 *            EventSource, fetch, AbortController, BroadcastChannel, locks, shareTabs,
 *            withCredentials, fallbackDelay, lives, cacheTTL, stableAfter, connectTimeout,
 *            backoffMin, backoffMax, pollTimeout, firstPollTimeout, pollGrace, minPollInterval,
 *            probeMin, probeMax, probeSettle})
 * -> { close(), state, transport, cursor }
 */
export function subscribe(options = {}) {
  const env = resolveEnv(options);
  if (options.shareTabs && env.locks && typeof env.locks.request === "function" && typeof env.BroadcastChannel === "function") {
    return createShared(options, env);
  }
  const conn = createConnection(options, env, {
    onNotice: options.onNotice,
    onReset: options.onReset,
    onStateChange: options.onStateChange,
  });
  return conn;
}

export const _internal = {
  ORDER,
  resolveEnv,
  channelQuery,
  createConnection,
  createShared,
};
