// herald/probe.js — SSE probes while on long-poll (rule 4b in /herald.js), as pusher-js and
// engine.io try the better transport again: an EventSource in the background that takes over
// once it has stayed open probeSettle, with the notices it got meanwhile delivered through
// the same dedupe. A failed probe costs nothing and the app never sees it.
//
// probeMethods are methods of the Connection (connection.js): `this` is the connection.

import { writeCache } from "./cache.js";

export const probeMethods = {
  scheduleProbe(minDelay) {
    this.clearT(this.probeTimer);
    this.probeTimer = null;
    if (this.closed || this.probe || !this.active || this.active.name !== "poll" || !this.order.includes("sse")) return;
    const o = this.o;
    const base = Math.min(o.probeMax, o.probeMin * 2 ** Math.min(20, this.probeFailures));
    const delay = Math.max(minDelay || 0, Math.round(base / 2 + this.env.random() * (base / 2)));
    const my = this.gen;
    this.probeTimer = this.setT(() => {
      this.probeTimer = null;
      if (my === this.gen && !this.closed && !this.probe && this.active && this.active.name === "poll") this.startTransport("sse", null);
    }, delay);
  },

  probeOpened(p) {
    if (this.probe !== p || p.ended || p.open) return;
    p.open = true;
    this.clearT(p.timer);
    // Open is not enough (herald's in-band "unavailable" answer opens too): it must stay up.
    p.timer = this.setT(() => this.promote(p), this.o.probeSettle);
  },

  promote(p) {
    p.timer = null;
    if (this.probe !== p || p.ended || this.closed) return;
    this.probe = null;
    if (!this.active || this.active.name !== "poll") return this.endTransport(p);
    this.endTransport(this.active); // closes we cause cost no life
    this.active = p;
    this.transport = p.name;
    this.probeFailures = 0;
    this.lives[p.name] = this.o.lives;
    writeCache(this.env.storage, p.name, this.env.now());
    const held = p.buffer;
    p.buffer = [];
    for (const h of held) {
      if (this.active !== p) return;
      if (h.obj) this.deliver(h.obj);
      else this.doReset(h.reset);
    }
    this.armStable(p);
    this.setState("connected", {}, true); // same state, new transport
  },

  probeFailed(p, info) {
    this.clearT(p.timer);
    p.timer = null;
    this.endTransport(p);
    if (this.probe !== p) return;
    this.probe = null;
    this.probeFailures++;
    this.scheduleProbe(info.kind === "throttle" ? info.retryAfter || 0 : 0);
  },
};
