// herald/sse.js — the "sse" transport: EventSource on GET /v1/stream, always with
// events=message so every notice arrives as a default "message" event (rule 1 in /herald.js).
// The factory contract is in transports.js.

import { answerError, closeInfo } from "./errors.js";
import { channelQuery, parseJson } from "./env.js";
import { parseId } from "./cursor.js";

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
  if (res.status === 200 && body && parseId(body.cursor)) return { head: String(body.cursor) };
  // Throttling and an expired token end the attempt as on a poll; any other answer (e.g. a
  // proxy that only routes the stream) opens the stream live, as before.
  const info = closeInfo(res, body, env);
  return info.kind === "throttle" || info.kind === "auth" ? { close: info } : {};
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
makeSseTransport.isSupported = (env) => typeof env.EventSource === "function";

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
    const status = Number(obj.status) || 503;
    const error = answerError(status, obj);
    ctx.onClose({
      kind: "throttle",
      status,
      code: error.code,
      error: { status, code: error.code || "unavailable", message: error.message },
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
