// herald/strategy.js — which transport to try, and when (rules 2, 3, 4 and 5 in /herald.js):
// an attempt races the transports (SSE first, long-poll after fallbackDelay or at once when
// SSE dies), the first to open wins, lives are lost and given back, failed attempts back off.
//
// strategyMethods are methods of the Connection (connection.js): `this` is the connection,
// whose fields hold the state (attempt, active, lives, failures, ...).

import { clearCache, writeCache } from "./cache.js";
import { ORDER } from "./transports.js";

/** Capped exponential backoff with jitter in [base/2, base]. n >= 1 */
export function backoffDelay(n, { backoffMin, backoffMax }, random = Math.random) {
  const exp = Math.min(30, Math.max(0, n - 1));
  const base = Math.min(backoffMax, backoffMin * 2 ** exp);
  return Math.round(base / 2 + random() * (base / 2));
}

export const strategyMethods = {
  restoreLives() {
    for (const n of ORDER) this.lives[n] = this.o.lives;
  },

  // ----- one transport: t = {name, attempt, handle, open, ended, usedToken, probe, buffer, timer}
  endTransport(t) {
    if (t.ended) return;
    t.ended = true;
    if (t.handle) {
      try {
        t.handle.close();
      } catch (_) {
        /* ignore */
      }
    }
  },

  // startTransport starts a candidate of attempt a, or with a null, an SSE probe (probe.js).
  startTransport(name, a) {
    const t = { name, attempt: a, handle: null, open: false, ended: false, usedToken: !!this.token, probe: false, buffer: [], timer: null };
    if (a) a.running.push(t);
    else t.probe = true;
    const live = () => this.active === t && !t.ended;
    // A probe's notices wait until it takes over (promote), then go through the same dedupe.
    const held = () => t.probe && this.probe === t && !t.ended;
    const o = this.o;
    const ctx = {
      url: this.url,
      channels: this.channels.slice(),
      token: this.token,
      cursor: () => this.cursor,
      env: this.env,
      options: {
        pollTimeout: o.pollTimeout,
        firstPollTimeout: o.firstPollTimeout,
        pollGrace: o.pollGrace,
        minPollInterval: o.minPollInterval,
        withCredentials: o.withCredentials,
      },
      onOpen: () => (t.probe ? this.probeOpened(t) : this.onOpen(t)),
      onNotice: (obj) => {
        if (!obj || typeof obj !== "object") return;
        if (live()) this.deliver(obj);
        else if (held()) t.buffer.push({ obj });
      },
      onReset: (head) => {
        if (live()) this.doReset(head);
        else if (held()) t.buffer.push({ reset: head });
      },
      onCursor: (c) => {
        if (live()) this.advance(c);
      },
      onHead: (h) => {
        if (!t.ended) this.learnHead(h);
      },
      onClose: (info) => (t.probe && this.active !== t ? this.probeFailed(t, info || {}) : this.onTransportClose(t, info || {})),
    };
    if (t.probe) {
      this.probe = t;
      t.timer = this.setT(() => this.probeFailed(t, { kind: "unclean" }), o.connectTimeout);
    }
    try {
      t.handle = this.factories[name](ctx);
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
  },

  // ----- attempts: a = {plan, pending, running, charged, fromCache, fallbackTimer, connectTimer, retryAfter, done}
  startAttempt(plan, fromCache) {
    const a = { plan: plan.slice(), pending: plan.slice(), running: [], charged: {}, fromCache, fallbackTimer: null, connectTimer: null, retryAfter: 0, done: false };
    this.attempt = a;
    a.connectTimer = this.setT(() => this.attemptTimedOut(a), this.o.connectTimeout);
    this.launchNext(a);
  },

  launchNext(a) {
    this.clearT(a.fallbackTimer);
    a.fallbackTimer = null;
    const name = a.pending.shift();
    if (!name) return;
    if (a.pending.length) {
      a.fallbackTimer = this.setT(() => {
        a.fallbackTimer = null;
        if (this.attempt === a && !a.done) this.launchNext(a);
      }, this.o.fallbackDelay);
    }
    this.startTransport(name, a);
  },

  finishAttempt(a) {
    a.done = true;
    this.clearT(a.fallbackTimer);
    this.clearT(a.connectTimer);
    a.fallbackTimer = a.connectTimer = null;
    if (this.attempt === a) this.attempt = null;
  },

  onOpen(t) {
    if (t.ended || t.open || this.closed) return;
    const a = t.attempt;
    if (this.attempt !== a || a.done) {
      this.endTransport(t);
      return;
    }
    t.open = true;
    this.finishAttempt(a);
    for (const other of a.running) if (other !== t) this.endTransport(other); // the loser
    this.active = t;
    this.transport = t.name;
    this.authRetried = false;
    this.lastError = null;
    // Cache long-poll only when SSE was tried in this attempt and lost (failed, or slower than
    // poll): a proxy in the way. Not when SSE was skipped for lack of lives (server restarts
    // cost those), and not again from the cache itself, so the entry expires cacheTTL after SSE
    // last failed.
    if (t.name !== "poll" || (!a.fromCache && a.plan.includes("sse"))) writeCache(this.env.storage, t.name, this.env.now());
    this.armStable(t);
    this.setState("connected");
    this.scheduleProbe(0);
  },

  armStable(t) {
    this.stable = false;
    this.clearT(this.stableTimer);
    this.stableTimer = this.setT(() => {
      this.stableTimer = null;
      if (this.active !== t) return;
      this.stable = true;
      this.failures = 0;
      this.lives[t.name] = this.o.lives;
    }, this.o.stableAfter);
  },

  onTransportClose(t, info) {
    if (t.ended) return;
    this.endTransport(t);
    if (this.closed || this.state === "failed") return;
    const kind = info.kind || "unclean";
    this.lastError = info.error || (info.status ? { status: info.status, code: info.code } : this.lastError);
    if (kind === "unclean") {
      // A connection that stayed up stableAfter and then dropped says nothing against its
      // transport (a server restart, a deploy): no life lost.
      if (!(this.active === t && this.stable)) {
        this.lives[t.name] = Math.max(0, this.lives[t.name] - 1);
        if (this.active !== t && t.attempt) t.attempt.charged[t.name] = (t.attempt.charged[t.name] || 0) + 1;
      }
      if (t.name === "sse" && t.usedToken && this.authorize) this.needsAuth = true;
    }
    if (kind === "fatal") return this.fail(this.lastError);
    if (kind === "auth") {
      if (!this.authorize || this.authRetried) return this.fail(this.lastError);
      this.authRetried = true;
      this.needsAuth = true;
      this.teardown();
      this.connect();
      return;
    }
    if (this.active === t) {
      // an established connection was lost
      this.active = null;
      this.transport = null;
      this.clearT(this.stableTimer);
      this.stableTimer = null;
      const wasStable = this.stable;
      this.stable = false;
      if (kind !== "throttle" && wasStable) {
        this.setState("connecting");
        this.connect();
      } else {
        this.scheduleRetry(kind === "throttle" ? info.retryAfter || 0 : 0);
      }
      return;
    }
    const a = t.attempt;
    if (this.attempt !== a || a.done) return;
    if (kind === "throttle") a.retryAfter = Math.max(a.retryAfter, info.retryAfter || 0);
    if (a.pending.length) {
      this.launchNext(a); // fail fast to the next transport
      return;
    }
    if (a.running.some((x) => !x.ended)) return; // another candidate is still trying
    this.attemptFailed(a);
  },

  attemptFailed(a) {
    this.finishAttempt(a);
    // No candidate opened: the server (or the network) is away, which says nothing about any
    // one transport. Give back the lives this attempt took.
    for (const n of Object.keys(a.charged)) this.lives[n] = Math.min(this.o.lives, this.lives[n] + a.charged[n]);
    if (a.fromCache && !a.retryAfter) {
      clearCache(this.env.storage);
      this.connect();
      return;
    }
    if (a.fromCache) clearCache(this.env.storage);
    this.scheduleRetry(a.retryAfter);
  },

  attemptTimedOut(a) {
    if (this.attempt !== a || a.done) return;
    a.pending = [];
    this.lastError = { code: "timeout", message: "no transport connected within " + this.o.connectTimeout + " ms" };
    for (const t of a.running) if (!t.ended) this.endTransport(t); // no life lost: nothing opened (attemptFailed)
    this.attemptFailed(a);
  },

  // scheduleRetry waits the backoff (at least minDelay, the server's Retry-After) in state
  // unavailable, then connects again.
  scheduleRetry(minDelay) {
    this.teardown();
    this.failures++;
    const delay = Math.max(minDelay || 0, backoffDelay(this.failures, this.o, this.env.random));
    this.setState("unavailable", { retryIn: delay });
    const my = this.gen;
    this.retryTimer = this.setT(() => {
      this.retryTimer = null;
      if (my !== this.gen || this.closed) return;
      if (this.order.every((n) => this.lives[n] <= 0)) this.restoreLives(); // a new backoff cycle
      this.connect();
    }, delay);
  },
};
