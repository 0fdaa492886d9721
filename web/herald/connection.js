// herald/connection.js — the connection engine: one tab, one connection. A Connection holds
// the state (its fields), the lifecycle (connect, teardown, fail, online/offline, close) and
// the states it reports (rules 10 and 11 in /herald.js). Its other methods are by idea, in
// their own modules: strategy.js (attempts, lives, backoff), probe.js (SSE probes while on
// long-poll) and cursor.js (delivery and the cursor).

import { DEFAULTS } from "./defaults.js";
import { baseUrl, pick, safeCall } from "./env.js";
import { readCache } from "./cache.js";
import { cursorMethods } from "./cursor.js";
import { ORDER, TRANSPORTS } from "./transports.js";
import { strategyMethods } from "./strategy.js";
import { probeMethods } from "./probe.js";

class Connection {
  constructor(options, env, hooks) {
    const o = {};
    for (const k of Object.keys(DEFAULTS)) o[k] = pick(options, k, DEFAULTS[k]);
    this.o = o;
    this.env = env;
    this.hooks = hooks;
    this.url = baseUrl(options.url);
    this.channels = Array.isArray(options.channels) ? options.channels.map(String) : [];
    this.authorize = typeof options.authorize === "function" ? options.authorize : null;
    this.factories = Object.assign({}, TRANSPORTS, options.transports || {});
    this.order = ORDER.filter((n) => {
      const f = this.factories[n];
      if (typeof f !== "function") return false;
      return typeof f.isSupported === "function" ? !!f.isSupported(env) : true;
    });

    this.token = options.token || null;
    this.cursor = options.cursor !== undefined && options.cursor !== null ? String(options.cursor) : null;
    this.state = "initialized";
    this.transport = null;
    this.lastError = null;
    this.needsAuth = false;
    this.authRetried = false;
    this.failures = 0;
    this.stable = false;
    this.closed = false;
    this.gen = 0; // bumped by every connect and teardown: older timers and awaits stand down
    this.attempt = null;
    this.active = null;
    this.retryTimer = null;
    this.stableTimer = null;
    this.probe = null; // an EventSource tried in the background while on long-poll
    this.probeTimer = null;
    this.probeFailures = 0;
    this.lives = {};
    this.restoreLives();

    // ----- online / offline
    this.onOffline = () => {
      if (this.closed || this.state === "failed") return;
      this.teardown();
      this.setState("offline");
    };
    this.onOnline = () => {
      if (this.closed || this.state === "failed" || this.state !== "offline") return;
      this.failures = 0;
      this.restoreLives();
      this.connect();
    };
    this.win = env.window && typeof env.window.addEventListener === "function" ? env.window : null;
    if (this.win) {
      this.win.addEventListener("offline", this.onOffline);
      this.win.addEventListener("online", this.onOnline);
    }
  }

  removeListeners() {
    if (this.win) {
      this.win.removeEventListener("offline", this.onOffline);
      this.win.removeEventListener("online", this.onOnline);
    }
  }

  setT(fn, ms) {
    return this.env.setTimeout(fn, ms);
  }

  clearT(id) {
    if (id !== null && id !== undefined) this.env.clearTimeout(id);
  }

  setState(next, extra = {}, force = false) {
    if (next === this.state && !force) return;
    const previous = this.state;
    this.state = next;
    safeCall(this.hooks.onStateChange, next, Object.assign({ transport: this.transport, error: this.lastError, previous }, extra));
  }

  isOffline() {
    const nav = this.env.navigator;
    return !!(nav && nav.onLine === false);
  }

  // teardown ends every transport and timer; the state is the caller's to set.
  teardown() {
    this.gen++;
    if (this.attempt) {
      const a = this.attempt;
      this.finishAttempt(a);
      for (const t of a.running) this.endTransport(t);
    }
    if (this.active) this.endTransport(this.active);
    if (this.probe) {
      this.clearT(this.probe.timer);
      this.endTransport(this.probe);
      this.probe = null;
    }
    this.active = null;
    this.transport = null;
    this.stable = false;
    this.clearT(this.retryTimer);
    this.clearT(this.stableTimer);
    this.clearT(this.probeTimer);
    this.retryTimer = this.stableTimer = this.probeTimer = null;
  }

  fail(error) {
    this.teardown();
    this.lastError = error || this.lastError;
    this.removeListeners();
    this.setState("failed");
  }

  async connect() {
    if (this.closed || this.state === "failed") return;
    this.clearT(this.retryTimer);
    this.retryTimer = null;
    const my = ++this.gen;
    if (this.isOffline()) {
      this.teardown();
      this.setState("offline");
      if (!this.win) {
        // no online event to wait for: look again later
        const g = this.gen;
        this.retryTimer = this.setT(() => {
          if (g === this.gen && !this.closed) this.connect();
        }, this.o.backoffMax);
      }
      return;
    }
    if (!this.order.length) {
      return this.fail({ code: "no_transport", message: "neither EventSource nor fetch is available" });
    }
    if (this.state !== "unavailable") this.setState("connecting");
    if (this.authorize && (!this.token || this.needsAuth)) {
      let fresh;
      try {
        fresh = await this.authorize();
      } catch (e) {
        if (my !== this.gen || this.closed || this.state === "failed") return;
        this.lastError = { code: "authorize_failed", message: String((e && e.message) || e) };
        this.scheduleRetry(0);
        return;
      }
      if (my !== this.gen || this.closed || this.state === "failed") return;
      this.needsAuth = false;
      if (fresh) this.token = String(fresh);
    }
    if (this.closed || this.state === "failed") return;
    const alive = this.order.filter((n) => this.lives[n] > 0);
    if (!alive.length) {
      this.scheduleRetry(0);
      return;
    }
    const cached = readCache(this.env.storage, this.env.now(), this.o.cacheTTL);
    if (cached && alive.includes(cached)) this.startAttempt([cached], true);
    else this.startAttempt(alive, false);
  }

  close() {
    if (this.closed) return;
    this.teardown();
    this.removeListeners();
    this.closed = true;
    this.setState("closed");
  }
}
Object.assign(Connection.prototype, cursorMethods, strategyMethods, probeMethods);

// createConnection starts a Connection and returns its handle: the subscription an app holds.
export function createConnection(options, env, hooks) {
  const c = new Connection(options, env, hooks);
  // start asynchronously so the caller holds the handle before the first callback
  Promise.resolve().then(() => {
    if (!c.closed && c.state === "initialized") c.connect();
  });
  return {
    close() {
      c.close();
    },
    get state() {
      return c.state;
    },
    get transport() {
      return c.transport;
    },
    get cursor() {
      return c.cursor;
    },
    get lives() {
      return Object.assign({}, c.lives);
    },
    get error() {
      return c.lastError;
    },
  };
}
