// herald/env.js — the environment herald.js runs in (injectable for tests), and the small
// helpers every module shares. See the rules at the top of /herald.js.

// pick reads an option only when the caller set it (even to null or undefined).
export function pick(options, name, fallback) {
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

// resolveEnv takes every browser API from the options when given (dependency injection,
// see herald.js), else from globalThis.
export function resolveEnv(options) {
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

// safeCall calls an app callback, if any; what it throws is rethrown later, not here.
export function safeCall(fn, ...args) {
  if (typeof fn !== "function") return;
  try {
    fn(...args);
  } catch (err) {
    rethrowLater(err);
  }
}

/** Builds "channel=a&channel=b" */
export function channelQuery(channels) {
  return channels.map((c) => "channel=" + encodeURIComponent(c));
}

export function baseUrl(url) {
  return String(url || "").replace(/\/+$/, "");
}

export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (_) {
    return null;
  }
}
