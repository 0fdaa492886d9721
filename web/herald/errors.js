// herald/errors.js — what herald's answers mean to the client: the one table that turns an
// HTTP answer into how a transport ends (rules 3, 5, 8 and 9 in /herald.js), and Retry-After.
//
// A transport ends with onClose(info); info.kind is one of
//   "unclean"  costs the transport a life, then the strategy tries again (rule 3)
//   "clean"    a close we caused: costs nothing
//   "throttle" 429/503 or herald's in-band "unavailable" event: wait info.retryAfter ms
//   "auth"     401 token_expired: authorize() again, then retry (rule 8)
//   "fatal"    a permanent 4xx or the "revoked" event: state failed (rule 9)
// plus status, code and error: {status, code, message}, what the app sees as `error`.
// Errors the client finds itself carry no status and one of the codes no_transport, timeout,
// network, sse_error, transport_error, bad_response, internal, authorize_failed.

/** Retry-After: delta seconds or an HTTP date; returns milliseconds (0 when absent/invalid). */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value === "") return 0;
  const s = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - now) : 0;
}

// answerError is the error of an answer: herald's {"error":{code,message}} body when it has
// one, else just the status.
export function answerError(status, body) {
  const e = body && body.error && typeof body.error === "object" ? body.error : null;
  return { status, code: e ? e.code : undefined, message: (e && e.message) || "HTTP " + status };
}

// closeInfo is how an answer other than the ones a transport handles itself (200, 410) ends
// it: 429/503 throttle for Retry-After, 401 token_expired re-authorizes, any other 4xx but
// 408 is permanent, and the rest (408, 5xx, a proxy's odd answer) costs a life.
export function closeInfo(res, body, env) {
  const status = res.status;
  const error = answerError(status, body);
  const code = error.code;
  if (status === 429 || status === 503) {
    const ra = res.headers && typeof res.headers.get === "function" ? res.headers.get("Retry-After") : null;
    return { kind: "throttle", status, code, error, retryAfter: parseRetryAfter(ra, env.now ? env.now() : Date.now()) };
  }
  if (status === 401 && code === "token_expired") return { kind: "auth", status, code, error };
  if (status >= 400 && status < 500 && status !== 408) return { kind: "fatal", status, code, error };
  return { kind: "unclean", status, code, error };
}
