// herald.js across server restarts, proxies and passing errors (docs/RECONNECTING.md):
// SSE probes while on long-poll, the transport cache, lives, and herald's in-band
// "unavailable" answer. Run with `node --test web/`; the fakes come from fakes.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, STORAGE_KEY, DEFAULTS, makeSseTransport } from "./herald.js";
import { flush, FakeClock, MemoryStorage, fakeSubscribe, untilNew as untilNewTransport } from "./fakes.mjs";

function setup(extra = {}) {
  const rec = { states: [], notices: [] };
  const { sub, clock, fk } = fakeSubscribe({
    onNotice: (n) => rec.notices.push(Number(n.id)),
    onStateChange: (s, info) => rec.states.push(s + ":" + (info.transport || "")),
    ...extra,
  });
  return { sub, clock, fk, rec };
}

// Reconnecting here waits out long backoffs: allow 10 minutes for a new transport, not 2.
const untilNew = (fk, clock, limit = 600_000) => untilNewTransport(fk, clock, limit);

/** Fails every running candidate (herald is down) until none is left running. */
async function failUntilUnavailable({ fk }) {
  for (let i = 0; ; i++) {
    assert.ok(i < 100, "attempt never gave up");
    const open = fk.made.filter((x) => !x.closed);
    if (!open.length) return;
    open.at(-1).fail();
    await flush();
  }
}

/** Two SSE connections that die soon after opening (herald restarting twice): long-poll takes over. */
async function fallBackAfterTwoRestarts(s) {
  const { sub, clock, fk } = s;
  await flush();
  fk.last("sse").open();
  fk.last("sse").fail(); // restart 1: sse 1
  let t = await untilNew(fk, clock);
  assert.equal(t.name, "sse");
  t.fail(); // herald still down: sse refused, and every other candidate too
  await failUntilUnavailable(s);
  assert.deepEqual(sub.lives, { sse: 1, poll: 2 }, "nothing opened: no life lost");
  t = await untilNew(fk, clock);
  t.open(); // herald back
  t.fail(); // restart 2, before the connection was stable: sse 0
  assert.equal(sub.lives.sse, 0);
  t = await untilNew(fk, clock);
  assert.equal(t.name, "poll", "SSE has no life left: long-poll");
  t.open();
  assert.equal(sub.transport, "poll");
  return t;
}

test("restarts: a stable SSE connection that drops, and attempts in which nothing opens, cost no life", async () => {
  const { sub, clock, fk } = setup();
  await flush();
  fk.last("sse").open();
  await clock.advance(DEFAULTS.stableAfter);
  for (let i = 0; i < 3; i++) {
    fk.last("sse").fail(); // herald restarts
    assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "a stable connection dropping says nothing against SSE");
    // herald down: SSE refused, poll refused
    await untilNew(fk, clock);
    await failUntilUnavailable({ sub, fk, clock });
    assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "every candidate failed: the server is away");
    const t = await untilNew(fk, clock);
    assert.equal(t.name, "sse", "SSE first again");
    t.open();
    await clock.advance(DEFAULTS.stableAfter);
  }
  assert.equal(sub.transport, "sse");
});

test("on long-poll, SSE is probed in the background with backoff and takes over once it stays open; every notice once", async () => {
  const storage = new MemoryStorage();
  const s = setup({ storage });
  const { sub, clock, fk, rec } = s;
  const poll = await fallBackAfterTwoRestarts(s);
  assert.notEqual(JSON.parse(storage.getItem(STORAGE_KEY) || "{}").transport, "poll",
    "long-poll won only because restarts took SSE's lives: not cached");
  poll.notice(1, 2, 3);
  const made = fk.made.length;
  await clock.advance(DEFAULTS.probeMin * 0.75 - 1);
  assert.equal(fk.made.length, made, "no probe before probeMin (jittered to 3/4 with random 0.5)");
  await clock.advance(1);
  const p1 = fk.made.at(-1);
  assert.equal(p1.name, "sse", "an SSE probe");
  assert.equal(p1.startCursor, "3", "the probe resumes from the cursor");
  assert.equal(sub.transport, "poll", "long-poll stays in charge while probing");
  p1.fail(); // still broken
  assert.equal(sub.transport, "poll");
  assert.equal(poll.closed, false);
  const t1 = clock.now();
  const p2 = await untilNew(fk, clock);
  assert.equal(p2.name, "sse");
  assert.ok(clock.now() - t1 >= DEFAULTS.probeMin * 2 * 0.75 - 50, "the next probe backs off");
  poll.notice(4);
  p2.open();
  p2.notice(3, 4, 5); // held until the probe takes over
  assert.deepEqual(rec.notices, [1, 2, 3, 4]);
  await clock.advance(DEFAULTS.probeSettle);
  assert.equal(sub.transport, "sse", "back on SSE");
  assert.equal(poll.closed, true, "long-poll closed");
  assert.equal(rec.states.at(-1), "connected:sse", "onStateChange reports the new transport");
  assert.equal(sub.lives.sse, DEFAULTS.lives);
  assert.equal(JSON.parse(storage.getItem(STORAGE_KEY)).transport, "sse");
  poll.notice(6); // late answer of the closed poll: ignored
  p2.notice(6, 7);
  assert.deepEqual(rec.notices, [1, 2, 3, 4, 5, 6, 7], "every notice once, in order, across both switches");
  const n = fk.made.length;
  await clock.advance(DEFAULTS.probeMax * 2);
  assert.equal(fk.made.length, n, "no probes on SSE");
});

test("a probe that herald answers with 'unavailable' does not take over; the next waits for its retryAfter", async () => {
  const s = setup();
  const { sub, clock, fk } = s;
  const poll = await fallBackAfterTwoRestarts(s);
  const p1 = await untilNew(fk, clock);
  p1.open();
  const t = clock.now();
  p1.fail({ kind: "throttle", retryAfter: 60_000, status: 429 });
  await clock.advance(DEFAULTS.probeSettle);
  assert.equal(sub.transport, "poll");
  assert.equal(poll.closed, false);
  const p2 = await untilNew(fk, clock);
  assert.ok(clock.now() - t >= 60_000, "probe again only after Retry-After");
  assert.equal(p2.name, "sse");
});

test("the cache: long-poll is cached when SSE lost in the same attempt, and expires from that moment", async () => {
  const storage = new MemoryStorage();
  const s = setup({ storage });
  await s.clock.advance(100);
  s.fk.last("sse").fail(); // a proxy answers the stream with an error, poll works
  s.fk.last("poll").open();
  const saved = JSON.parse(storage.getItem(STORAGE_KEY));
  assert.equal(saved.transport, "poll");
  s.sub.close();

  // next page view: straight to the cached long-poll, which does not renew the entry
  const clock = new FakeClock(saved.timestamp + 60_000);
  const second = setup({ storage, clock });
  await flush();
  assert.deepEqual(second.fk.made.map((t) => t.name), ["poll"]);
  second.fk.last("poll").open();
  assert.equal(JSON.parse(storage.getItem(STORAGE_KEY)).timestamp, saved.timestamp, "not renewed by the cached connection");
  second.sub.close();
});

test("SSE answered with herald's in-band 'unavailable' event: no life lost, retried with backoff, not before retryAfter", async () => {
  const clock = new FakeClock();
  const instances = [];
  class ES {
    constructor(url) {
      this.url = url;
      this.listeners = {};
      this.closed = false;
      instances.push(this);
    }
    addEventListener(type, fn) {
      (this.listeners[type] ||= []).push(fn);
    }
    close() {
      this.closed = true;
    }
    emit(type, data) {
      for (const fn of this.listeners[type] || []) fn({ data: JSON.stringify(data) });
    }
  }
  const states = [];
  const sub = subscribe({
    channels: ["a"],
    storage: null,
    EventSource: ES,
    fetch: undefined,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0,
    window: null,
    navigator: { onLine: true },
    onStateChange: (s, info) => states.push([s, info.retryIn, info.error && info.error.code]),
  });
  await flush();
  for (const [i, retryAfter] of [[0, 5], [1, 0]]) {
    const es = instances[i];
    es.onopen({});
    es.emit("unavailable", { status: 429, error: { code: "too_many_connections", message: "m" }, retryAfter });
    assert.equal(es.closed, true, "closed: herald.js reconnects itself");
    assert.equal(sub.state, "unavailable");
    assert.equal(sub.lives.sse, 2, "a passing condition costs no life");
    assert.equal(sub.error.code, "too_many_connections");
    const wait = states.at(-1)[1];
    const min = Math.max(retryAfter * 1000, DEFAULTS.backoffMin * 2 ** i / 2);
    assert.ok(wait >= min, `retryIn ${wait} >= ${min}`);
    await clock.advance(wait - 1);
    assert.equal(instances.length, i + 1, "not before retryIn");
    await clock.advance(1);
    assert.equal(instances.length, i + 2);
  }
  sub.close();

  // the transport itself
  const events = [];
  makeSseTransport({
    url: "",
    channels: ["a"],
    token: null,
    cursor: () => null,
    env: { EventSource: ES },
    options: {},
    onOpen: () => events.push("open"),
    onNotice: () => events.push("notice"),
    onReset: () => {},
    onCursor: () => {},
    onClose: (i) => events.push(i),
  });
  const es = instances.at(-1);
  es.onopen({});
  es.emit("unavailable", { status: 503, error: { code: "unavailable", message: "db" }, retryAfter: 2 });
  es.onerror && es.onerror({});
  assert.deepEqual(events, ["open", { kind: "throttle", status: 503, code: "unavailable", error: { status: 503, code: "unavailable", message: "db" }, retryAfter: 2000 }]);
});
