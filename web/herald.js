// herald.js — browser client for herald (SSE first, long-poll fallback).
// Plain ES modules, no dependencies, no build step. Served at /herald.js, which imports the
// rest from herald/*.js next to it (served at /herald/*.js); this file is the public API.
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
// (factories, see herald/transports.js for the contract), storage (null disables the
// cache), now, random, setTimeout, clearTimeout, window (online/offline events), navigator,
// EventSource, fetch, AbortController, BroadcastChannel, locks.
//
// The modules, by idea (each names the rules above it implements):
//   herald/connection.js  the connection engine: state, lifecycle, online/offline, the handle
//   herald/strategy.js    attempts: fallback, first to open wins, lives, backoff
//   herald/probe.js       SSE probes while on long-poll
//   herald/transports.js  the transport contract and order; herald/sse.js, herald/poll.js
//   herald/cursor.js      ids, cursors and epochs; delivery without gaps or duplicates
//   herald/cache.js       the transport cache (localStorage)
//   herald/errors.js      what herald's answers mean: close kinds, Retry-After
//   herald/shared.js      shareTabs: one leader tab, notices fanned out
//   herald/defaults.js    the tunables; herald/env.js the environment and shared helpers

import { resolveEnv, channelQuery } from "./herald/env.js";
import { ORDER } from "./herald/transports.js";
import { createConnection } from "./herald/connection.js";
import { createShared } from "./herald/shared.js";

export { DEFAULTS } from "./herald/defaults.js";
export { STORAGE_KEY, readCache, writeCache } from "./herald/cache.js";
export { parseRetryAfter } from "./herald/errors.js";
export { backoffDelay } from "./herald/strategy.js";
export { makeSseTransport } from "./herald/sse.js";
export { makePollTransport } from "./herald/poll.js";

// A browser learns a module's imports only once it has fetched it, so each level of imports
// would cost a round trip: herald.js names every module (the two not named above here), and
// they are all fetched at once, right after it (web_test.go checks none is left out).
import "./herald/cursor.js";
import "./herald/probe.js";

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
