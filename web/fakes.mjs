// Fakes the herald.js tests share (herald_test.mjs, herald_reconnect_test.mjs,
// herald_opening_test.mjs): a fake clock, storage, transports and tabs (BroadcastChannel +
// Web Locks), so the tests need no network, no real timers and no browser. They live in
// one module so the three files cannot drift apart: each used to carry its own copy.
// Not a test file (node --test does not pick it up) and not part of the published package.
import { subscribe } from "./herald.js";

/** Lets pending promise callbacks and setImmediate work run. */
export const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

/** A fake clock: now/setTimeout/clearTimeout for subscribe(); advance(ms) fires due timers in order. */
export class FakeClock {
  constructor(start = 1_700_000_000_000) {
    this.t = start;
    this.seq = 0;
    this.timers = new Map();
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn, id });
      return id;
    };
    this.clearTimeout = (id) => this.timers.delete(id);
  }
  async advance(ms) {
    const end = this.t + ms;
    await flush();
    for (;;) {
      let next = null;
      for (const tm of this.timers.values()) if (tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id))) next = tm;
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** localStorage in memory. */
export class MemoryStorage {
  constructor(init = {}) {
    this.m = new Map(Object.entries(init));
  }
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

/** Fake transport factories; every created transport is recorded in `made`. */
export function fakeTransports() {
  const made = [];
  const mk = (name) => (ctx) => {
    const t = {
      name,
      ctx,
      closed: false,
      startCursor: ctx.cursor(),
      token: ctx.token,
      open: () => ctx.onOpen(),
      notice: (...ids) => ids.forEach((id) => ctx.onNotice({ id: String(id), channel: "c", type: "t", data: { n: id } })),
      reset: (head) => ctx.onReset(head),
      fail: (info = { kind: "unclean" }) => ctx.onClose(info),
    };
    made.push(t);
    return {
      close() {
        t.closed = true;
      },
    };
  };
  return {
    made,
    transports: { sse: mk("sse"), poll: mk("poll") },
    of: (name) => made.filter((t) => t.name === name),
    last: (name) => made.filter((t) => !name || t.name === name).at(-1),
  };
}

/**
 * subscribe() over fake transports and a fake clock (extra.clock, or a new one), with no
 * storage, window or randomness, on channel "a"; extra overrides any option (channels,
 * callbacks, storage...). Returns the subscription, the clock and the transports.
 */
export function fakeSubscribe(extra = {}) {
  const clock = extra.clock || new FakeClock();
  const fk = fakeTransports();
  const sub = subscribe({
    url: "https://herald.test",
    channels: ["a"],
    storage: null,
    transports: fk.transports,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    window: null,
    navigator: { onLine: true },
    ...extra,
  });
  return { sub, clock, fk };
}

/** Advances the clock in 50 ms steps until a new transport has been created (at most limit ms). */
export async function untilNew(fk, clock, limit = 120_000) {
  const n = fk.made.length;
  const start = clock.now();
  while (fk.made.length === n) {
    if (clock.now() - start > limit) throw new Error("no new transport within " + limit + " ms");
    await clock.advance(50);
  }
  return fk.made.at(-1);
}

/** Tabs of one browser: a BroadcastChannel and Web Locks (one queue per lock name) they share. */
export function fakeTabs() {
  const hub = new Map();
  class FakeBC {
    constructor(name) {
      this.name = name;
      this.closed = false;
      if (!hub.has(name)) hub.set(name, new Set());
      hub.get(name).add(this);
    }
    postMessage(data) {
      const copy = structuredClone(data);
      for (const other of hub.get(this.name)) {
        if (other !== this && !other.closed) setImmediate(() => !other.closed && other.onmessage && other.onmessage({ data: copy }));
      }
    }
    close() {
      this.closed = true;
      hub.get(this.name).delete(this);
    }
  }
  const held = new Map();
  const queues = new Map();
  const locks = {
    request(name, opts, cb) {
      return new Promise((resolve, reject) => {
        const entry = { cb, resolve, reject };
        if (!queues.has(name)) queues.set(name, []);
        const q = queues.get(name);
        q.push(entry);
        if (opts && opts.signal)
          opts.signal.addEventListener("abort", () => {
            const i = q.indexOf(entry);
            if (i >= 0) {
              q.splice(i, 1);
              reject(new DOMException("aborted", "AbortError"));
            }
          });
        pump(name);
      });
    },
  };
  function pump(name) {
    if (held.get(name)) return;
    const q = queues.get(name);
    const entry = q && q.shift();
    if (!entry) return;
    held.set(name, true);
    Promise.resolve(entry.cb()).then((v) => {
      held.set(name, false);
      entry.resolve(v);
      pump(name);
    });
  }
  return { BroadcastChannel: FakeBC, locks };
}
