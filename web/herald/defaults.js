// herald/defaults.js — the tunables every subscription starts from (times in ms unless
// noted); the rules at the top of /herald.js say what each one does.

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
