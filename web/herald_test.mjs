// Tests for herald.js — run with `node --test web/`. No network: fake transports, fake
// timers, fake fetch/EventSource/storage/locks/BroadcastChannel (the ones the herald.js
// tests share come from fakes.mjs; fetch and EventSource are faked here).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  subscribe,
  STORAGE_KEY,
  DEFAULTS,
  backoffDelay,
  parseRetryAfter,
  makePollTransport,
  makeSseTransport,
} from "./herald.js";
import { flush, FakeClock, MemoryStorage, fakeTransports, fakeSubscribe, untilNew, fakeTabs } from "./fakes.mjs";

// ---------------------------------------------------------------------------------- fakes

function setup(extra = {}) {
  const rec = { states: [], infos: [], notices: [], resets: [] };
  const { sub, clock, fk } = fakeSubscribe({
    channels: ["a", "private-b"],
    onNotice: (n) => rec.notices.push(n),
    onReset: (r) => rec.resets.push(r),
    onStateChange: (s, info) => {
      rec.states.push(s);
      rec.infos.push(info);
    },
    ...extra,
  });
  return { sub, clock, fk, rec, ids: () => rec.notices.map((n) => Number(n.id)) };
}

function fakeFetch() {
  const calls = [];
  const fn = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(url, "http://origin.test");
      const call = {
        url: u,
        init,
        aborted: false,
        channels: u.searchParams.getAll("channel"),
        cursor: u.searchParams.get("cursor"),
        timeout: u.searchParams.get("timeout"),
        auth: init.headers && init.headers.Authorization,
        reply(status, body, headers = {}) {
          resolve(new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } }));
        },
        fail(err = new TypeError("Failed to fetch")) {
          reject(err);
        },
      };
      if (init.signal) {
        init.signal.addEventListener("abort", () => {
          call.aborted = true;
          reject(new DOMException("aborted", "AbortError"));
        });
      }
      calls.push(call);
      if (fn.auto) fn.auto(call);
    });
  fn.calls = calls;
  return fn;
}

class FakeEventSource {
  static instances = [];
  constructor(url, init) {
    this.url = new URL(url, "http://origin.test");
    this.init = init;
    this.closed = false;
    this.listeners = {};
    FakeEventSource.instances.push(this);
  }
  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }
  close() {
    this.closed = true;
  }
  // server side helpers
  emitOpen() {
    this.onopen && this.onopen({});
  }
  emitMessage(obj) {
    this.onmessage && this.onmessage({ data: JSON.stringify(obj), lastEventId: obj.id });
  }
  emitNamed(type, obj) {
    for (const fn of this.listeners[type] || []) fn({ data: JSON.stringify(obj) });
  }
  emitError() {
    this.onerror && this.onerror({});
  }
}

const notice = (id) => ({ id: String(id), channel: "a", type: "build-state-changed", data: { n: id }, at: "2026-11-22T14:07:03.123Z" });

// ---------------------------------------------------------------------------------- strategy

test("EventSource is tried first; poll is not started while SSE connects in time", async () => {
  const { sub, clock, fk, rec } = setup();
  await flush();
  assert.deepEqual(fk.made.map((t) => t.name), ["sse"]);
  assert.equal(sub.state, "connecting");
  await clock.advance(1500);
  fk.last("sse").open();
  assert.equal(sub.state, "connected");
  assert.equal(sub.transport, "sse");
  await clock.advance(60_000);
  assert.equal(fk.of("poll").length, 0, "no poll once SSE has won");
  assert.deepEqual(rec.states, ["connecting", "connected"]);
  assert.equal(rec.infos[1].transport, "sse");
});

test("long-poll starts in parallel after 2 s when SSE has not opened", async () => {
  const { clock, fk } = setup();
  await clock.advance(DEFAULTS.fallbackDelay - 1);
  assert.deepEqual(fk.made.map((t) => t.name), ["sse"]);
  await clock.advance(1);
  assert.deepEqual(fk.made.map((t) => t.name), ["sse", "poll"]);
  assert.equal(fk.last("sse").closed, false, "SSE keeps trying in parallel");
});

test("first transport to connect wins and the loser is closed (poll wins)", async () => {
  const { sub, clock, fk, rec } = setup();
  await clock.advance(2000);
  const [sse, poll] = fk.made;
  poll.open();
  assert.equal(sub.transport, "poll");
  assert.equal(sse.closed, true, "losing SSE closed");
  assert.equal(poll.closed, false);
  sse.open(); // late open of the loser is ignored
  sse.notice(99);
  assert.equal(sub.transport, "poll");
  assert.deepEqual(rec.notices, []);
  assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "closing the loser costs no life");
});

test("first transport to connect wins and the loser is closed (SSE wins late)", async () => {
  const { sub, clock, fk } = setup();
  await clock.advance(2500);
  const [sse, poll] = fk.made;
  sse.open();
  assert.equal(sub.transport, "sse");
  assert.equal(poll.closed, true);
  poll.notice(1);
  assert.equal(sub.cursor, null, "notices from the loser are ignored");
});

test("SSE dying before it opens starts poll at once (no 2 s wait)", async () => {
  const { sub, clock, fk } = setup();
  await clock.advance(100);
  fk.last("sse").fail();
  assert.deepEqual(fk.made.map((t) => t.name), ["sse", "poll"]);
  assert.equal(sub.lives.sse, 1);
  fk.last("poll").open();
  assert.equal(sub.state, "connected");
  assert.equal(sub.transport, "poll");
});

test("EventSource missing: straight to long-poll", async () => {
  const clock = new FakeClock();
  const fk = fakeTransports();
  const sub = subscribe({
    channels: ["a"],
    storage: null,
    EventSource: undefined, // the default SSE transport is unsupported
    transports: { poll: fk.transports.poll },
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    window: null,
    navigator: { onLine: true },
  });
  await flush();
  assert.deepEqual(fk.made.map((t) => t.name), ["poll"], "poll at t=0");
  fk.last("poll").open();
  assert.equal(sub.transport, "poll");
  sub.close();
});

test("lives: two unclean closes kill a transport, which is then skipped", async () => {
  const { sub, clock, fk, rec } = setup();
  await flush();
  fk.last("sse").open();
  fk.last("sse").fail(); // 1st unclean close (after open), not stable yet -> backoff
  assert.equal(sub.lives.sse, 1);
  assert.equal(sub.state, "unavailable");
  await untilNew(fk, clock);
  assert.equal(fk.made.length, 2);
  assert.equal(fk.last().name, "sse", "SSE still has a life, tried first again");
  fk.last("sse").fail(); // 2nd unclean close (before open) -> dead, poll at once
  assert.equal(sub.lives.sse, 0);
  assert.equal(fk.last().name, "poll");
  fk.last("poll").open();
  assert.equal(sub.state, "connected");
  fk.last("poll").fail();
  assert.equal(sub.lives.poll, 1);
  const before = fk.made.length;
  await untilNew(fk, clock);
  const next = fk.made.slice(before);
  assert.deepEqual(next.map((t) => t.name), ["poll"], "dead SSE skipped");
  await clock.advance(5000);
  assert.deepEqual(fk.made.slice(before).map((t) => t.name), ["poll"], "no SSE even after the fallback delay");
  assert.ok(!rec.states.includes("failed"));
});

test("lives come back: after 30 s of stable connection, and after a backoff cycle with every transport dead", async () => {
  const { sub, clock, fk, rec } = setup();
  await flush();
  fk.last("sse").fail(); // sse 1
  fk.last("poll").open();
  fk.last("poll").fail(); // poll 1, unstable -> backoff
  await untilNew(fk, clock);
  fk.last("sse").fail(); // sse 0
  fk.last("poll").open();
  assert.deepEqual(sub.lives, { sse: 0, poll: 1 });
  await clock.advance(DEFAULTS.stableAfter);
  assert.deepEqual(sub.lives, { sse: 0, poll: 2 }, "the winner's lives restored after 30 s up");
  // a stable connection that drops reconnects at once, state connecting, and loses no life
  const n = fk.made.length;
  fk.last("poll").fail();
  assert.equal(sub.state, "connecting");
  assert.equal(fk.made.length, n + 1);
  assert.equal(fk.last().name, "poll");
  assert.deepEqual(sub.lives, { sse: 0, poll: 2 }, "a stable connection dropping costs no life");
  fk.last("poll").open();
  fk.last("poll").fail(); // unstable: poll 1
  await untilNew(fk, clock);
  fk.last("poll").open();
  fk.last("poll").fail(); // poll 0: every transport dead
  assert.deepEqual(sub.lives, { sse: 0, poll: 0 });
  assert.equal(sub.state, "unavailable", "an outage is not failure");
  await untilNew(fk, clock);
  assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "all lives restored for the new cycle");
  assert.equal(fk.made.at(-1).name, "sse");
  assert.ok(!rec.states.includes("failed"));
});

test("connect timeout: candidates that never open are closed, the attempt is retried, no life lost", async () => {
  const { sub, clock, fk } = setup();
  await clock.advance(DEFAULTS.connectTimeout);
  assert.equal(fk.made.length, 2);
  assert.ok(fk.made.every((t) => t.closed));
  assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "nothing opened: the server is away, not a transport");
  assert.equal(sub.state, "unavailable");
  assert.equal(sub.error.code, "timeout");
});

// ---------------------------------------------------------------------------------- cache

test("the winning transport is cached and used directly next time", async () => {
  const storage = new MemoryStorage();
  const first = setup({ storage });
  await first.clock.advance(2000);
  first.fk.last("poll").open();
  const saved = JSON.parse(storage.getItem(STORAGE_KEY));
  assert.equal(saved.transport, "poll");
  assert.equal(saved.timestamp, first.clock.now());
  first.sub.close();

  const clock = new FakeClock(first.clock.now() + 60_000); // next page view, 1 min later
  const second = setup({ storage, clock });
  await clock.advance(10_000);
  assert.deepEqual(second.fk.made.map((t) => t.name), ["poll"], "straight to the cached poll, no SSE");
  second.fk.last("poll").open();
  assert.equal(second.sub.transport, "poll");
});

test("the cached transport expires after 5 minutes", async () => {
  const start = 1_700_000_000_000;
  const storage = new MemoryStorage({
    [STORAGE_KEY]: JSON.stringify({ transport: "poll", timestamp: start - 5 * 60 * 1000 }),
  });
  const { fk, clock } = setup({ storage, clock: new FakeClock(start) });
  await flush();
  assert.deepEqual(fk.made.map((t) => t.name), ["sse"], "expired cache ignored: full strategy");
  assert.equal(storage.getItem(STORAGE_KEY), null, "expired entry removed");
  await clock.advance(2000);
  assert.deepEqual(fk.made.map((t) => t.name), ["sse", "poll"]);

  const fresh = new MemoryStorage({
    [STORAGE_KEY]: JSON.stringify({ transport: "poll", timestamp: start - 5 * 60 * 1000 + 1 }),
  });
  const other = setup({ storage: fresh, clock: new FakeClock(start) });
  await flush();
  assert.deepEqual(other.fk.made.map((t) => t.name), ["poll"], "one ms before expiry it is still used");
});

test("a failing cached transport falls back to the full strategy at once", async () => {
  const clock = new FakeClock();
  const storage = new MemoryStorage({ [STORAGE_KEY]: JSON.stringify({ transport: "poll", timestamp: clock.now() }) });
  const { fk, sub } = setup({ storage, clock });
  await flush();
  fk.last("poll").fail();
  await flush();
  assert.deepEqual(fk.made.map((t) => t.name), ["poll", "sse"]);
  assert.equal(storage.getItem(STORAGE_KEY), null);
  assert.equal(sub.state, "connecting");
  fk.last("sse").open();
  assert.equal(JSON.parse(storage.getItem(STORAGE_KEY)).transport, "sse");
});

// ---------------------------------------------------------------------------------- cursor

test("dedupe across a transport switch: poll 1..5, SSE replays 3..7, app sees 1..7 once", async () => {
  const { sub, clock, fk, ids } = setup();
  await clock.advance(2000);
  fk.last("poll").open();
  fk.last("poll").notice(1, 2, 3, 4, 5);
  assert.equal(sub.cursor, "5");
  fk.last("poll").fail();
  await untilNew(fk, clock);
  const sse = fk.last();
  assert.equal(sse.name, "sse");
  assert.equal(sse.startCursor, "5", "new EventSource resumes from the cursor (lastEventId)");
  sse.open();
  sse.notice(3, 4, 5, 6, 7);
  sse.notice(6); // late duplicate
  assert.deepEqual(ids(), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(sub.cursor, "7");
  sse.fail();
  await untilNew(fk, clock);
  // sse has a life left: tried first again; then the poll fallback reads the cursor too
  await clock.advance(2000);
  assert.equal(fk.last("sse").startCursor, "7");
  assert.equal(fk.last("poll").ctx.cursor(), "7");
});

test("reset: onReset({cursor: head}) and the cursor moves to head (also backwards)", async () => {
  const { sub, fk, rec, ids } = setup({ cursor: "500" });
  await flush();
  const sse = fk.last("sse");
  assert.equal(sse.startCursor, "500", "initial cursor option used as lastEventId");
  sse.open();
  sse.reset("100"); // ahead of head (restored database)
  assert.deepEqual(rec.resets, [{ cursor: "100" }]);
  assert.equal(sub.cursor, "100");
  sse.notice(100, 101);
  assert.deepEqual(ids(), [101], "seq <= head dropped, later delivered");
});

test("epochs: ids are <epoch>.<seq>; dedupe within an epoch; a new epoch is a reset, then delivered", async () => {
  const { sub, fk, rec } = setup();
  await flush();
  const sse = fk.last("sse");
  sse.open();
  sse.notice("k3x.5", "k3x.6", "k3x.6", "k3x.4");
  assert.deepEqual(rec.notices.map((n) => n.id), ["k3x.5", "k3x.6"], "seqs compare within the epoch");
  assert.equal(sub.cursor, "k3x.6");
  // the database was restored: a lower seq of another epoch is new, not a duplicate
  sse.notice("q7.2", "q7.3", "q7.3");
  assert.deepEqual(rec.resets, [{ cursor: "q7.1" }], "another epoch counts as the server's reset");
  assert.deepEqual(rec.notices.map((n) => n.id), ["k3x.5", "k3x.6", "q7.2", "q7.3"]);
  assert.equal(sub.cursor, "q7.3");
  sse.reset("q7.10");
  assert.equal(sub.cursor, "q7.10");
  assert.deepEqual(rec.resets.at(-1), { cursor: "q7.10" });
});

test("epochs: a bare decimal cursor (older storage) resumes, compares by seq, and takes the server's epoch", async () => {
  const { sub, clock, fk, rec } = setup({ cursor: "7" });
  await flush();
  const sse = fk.last("sse");
  assert.equal(sse.startCursor, "7", "sent as it is: the server takes it as its current epoch");
  sse.open();
  sse.notice("k3x.7", "k3x.8");
  assert.deepEqual(rec.notices.map((n) => n.id), ["k3x.8"]);
  assert.equal(rec.resets.length, 0);
  assert.equal(sub.cursor, "k3x.8");
  sse.fail();
  await untilNew(fk, clock);
  await clock.advance(2000);
  assert.equal(fk.last("sse").startCursor, "k3x.8");
});

test("epochs: a poll answer's cursor moves forward within the epoch; of another epoch it resets", async () => {
  const { sub, clock, fk, rec } = setup({ cursor: "k3x.5" });
  await clock.advance(2000);
  const poll = fk.last("poll");
  poll.open();
  poll.ctx.onCursor("k3x.9");
  assert.equal(sub.cursor, "k3x.9");
  poll.ctx.onCursor("k3x.3");
  assert.equal(sub.cursor, "k3x.9", "never backwards");
  poll.ctx.onCursor("q7.4");
  assert.equal(sub.cursor, "q7.4");
  assert.deepEqual(rec.resets, [{ cursor: "q7.4" }]);
});

// ---------------------------------------------------------------------------------- states

test("state machine: connecting -> connected -> unavailable -> connected -> offline -> connecting -> connected -> closed", async () => {
  const win = new EventTarget();
  const nav = { onLine: true };
  const { sub, clock, fk, rec } = setup({ window: win, navigator: nav });
  await flush();
  fk.last("sse").open();
  fk.last("sse").fail();
  assert.equal(sub.transport, null);
  await untilNew(fk, clock);
  fk.last("sse").open();
  nav.onLine = false;
  win.dispatchEvent(new Event("offline"));
  assert.equal(sub.state, "offline");
  assert.equal(fk.last("sse").closed, true, "transport closed when offline");
  assert.equal(sub.lives.sse, 1, "going offline costs no life");
  const n = fk.made.length;
  await clock.advance(120_000);
  assert.equal(fk.made.length, n, "no attempts while offline");
  nav.onLine = true;
  win.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(fk.made.length, n + 1, "reconnects at once when online");
  assert.deepEqual(sub.lives, { sse: 2, poll: 2 }, "lives restored when back online");
  fk.last("sse").open();
  sub.close();
  assert.deepEqual(rec.states, ["connecting", "connected", "unavailable", "connected", "offline", "connecting", "connected", "closed"]);
  assert.equal(fk.last("sse").closed, true);
  win.dispatchEvent(new Event("online"));
  await clock.advance(60_000);
  assert.equal(fk.made.length, n + 1, "nothing after close()");
});

test("starts offline when navigator.onLine is false", async () => {
  const win = new EventTarget();
  const nav = { onLine: false };
  const { sub, fk, rec } = setup({ window: win, navigator: nav });
  await flush();
  assert.equal(sub.state, "offline");
  assert.equal(fk.made.length, 0);
  nav.onLine = true;
  win.dispatchEvent(new Event("online"));
  await flush();
  assert.deepEqual(rec.states, ["offline", "connecting"]);
  assert.equal(fk.made.length, 1);
});

test("unavailable retries use capped jittered exponential backoff", async () => {
  const clock = new FakeClock();
  const fk2 = fakeTransports();
  const s = setup({ transports: { sse: fk2.transports.sse, poll: null }, clock });
  await flush();
  const times = [];
  for (let i = 0; i < 7; i++) {
    const before = fk2.made.length;
    fk2.last().fail();
    const failedAt = clock.now();
    while (fk2.made.length === before) await clock.advance(50);
    times.push(clock.now() - failedAt);
  }
  // random()=0.5 -> 0.75*base; base 1s,2s,4s,8s,16s,30s,30s (lives restored each cycle)
  const expected = [750, 1500, 3000, 6000, 12000, 22500, 22500];
  times.forEach((t, i) => assert.ok(Math.abs(t - expected[i]) <= 50, `retry ${i}: ${t} vs ${expected[i]}`));
  assert.equal(s.sub.state, "unavailable");
  assert.ok(!s.rec.states.includes("failed"));
  assert.equal(backoffDelay(1, DEFAULTS, () => 0), 500);
  assert.equal(backoffDelay(1, DEFAULTS, () => 1), 1000);
  assert.equal(backoffDelay(50, DEFAULTS, () => 1), 30000);
});

// ---------------------------------------------------------------------------------- auth & errors

test("401 token_expired on poll: authorize() is called and the retry uses the new token", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  let n = 0;
  const authorize = async () => "tok-" + ++n;
  const states = [];
  fetch.auto = (call) => {
    if (call.auth === "Bearer old") call.reply(401, { error: { code: "token_expired", message: "expired" } });
    else if (call.cursor === null) call.reply(200, { events: [], cursor: "42" });
  };
  const sub = subscribe({
    url: "https://herald.test/",
    channels: ["private-b"],
    token: "old",
    authorize,
    storage: null,
    EventSource: undefined,
    fetch,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    window: null,
    navigator: { onLine: true },
    onStateChange: (s) => states.push(s),
  });
  await flush();
  assert.equal(n, 1, "authorize called once");
  assert.equal(fetch.calls[0].auth, "Bearer old");
  assert.equal(fetch.calls[1].auth, "Bearer tok-1");
  assert.equal(sub.state, "connected");
  assert.equal(sub.cursor, "42", "no-cursor poll answer gives the starting head");
  assert.equal(fetch.calls[2].cursor, "42");
  assert.equal(fetch.calls[2].auth, "Bearer tok-1");
  assert.deepEqual(states, ["connecting", "connected"]);
  sub.close();
  assert.equal(fetch.calls[2].aborted, true, "close() aborts the pending long-poll");
});

test("401 token_expired again right after authorize(), or without authorize(): failed", async () => {
  const clock = new FakeClock();
  const mk = (authorize) => {
    const fetch = fakeFetch();
    fetch.auto = (call) => call.reply(401, { error: { code: "token_expired", message: "expired" } });
    const sub = subscribe({
      channels: ["private-b"],
      token: "old",
      authorize,
      storage: null,
      EventSource: undefined,
      fetch,
      now: clock.now,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      window: null,
      navigator: { onLine: true },
    });
    return { sub, fetch };
  };
  let calls = 0;
  const a = mk(async () => "new-" + ++calls);
  const b = mk(undefined);
  await flush();
  assert.equal(calls, 1, "retried once");
  assert.equal(a.fetch.calls.length, 2);
  assert.equal(a.sub.state, "failed");
  assert.equal(a.sub.error.code, "token_expired");
  assert.equal(b.sub.state, "failed");
  assert.equal(b.fetch.calls.length, 1);
});

test("unclean close of an SSE stream that had a token: authorize() before reconnecting, new token in the URL", async () => {
  FakeEventSource.instances = [];
  const clock = new FakeClock();
  let n = 0;
  const sub = subscribe({
    url: "https://herald.test",
    channels: ["private-b", "a b"],
    token: "t0",
    authorize: async () => "t" + ++n,
    storage: null,
    EventSource: FakeEventSource,
    fetch: undefined, // no head request: the EventSource opens at once
    transports: { poll: null },
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    window: null,
    navigator: { onLine: true },
  });
  await flush();
  assert.equal(n, 0, "token given: no authorize() up front");
  const es = FakeEventSource.instances[0];
  assert.equal(es.url.searchParams.get("token"), "t0");
  es.emitOpen();
  es.emitMessage(notice(10));
  await clock.advance(DEFAULTS.stableAfter);
  es.emitError(); // server closed the stream at exp
  assert.equal(es.closed, true);
  await flush();
  assert.equal(n, 1, "authorize() called after the unclean close");
  const es2 = FakeEventSource.instances[1];
  assert.equal(es2.url.searchParams.get("token"), "t1");
  assert.equal(es2.url.searchParams.get("lastEventId"), "10");
  es2.emitOpen();
  assert.equal(sub.state, "connected");
  sub.close();
});

test("no token but authorize(): authorize() is called before connecting", async () => {
  const { fk } = setup({ token: undefined, authorize: async () => "fresh" });
  await flush();
  assert.equal(fk.last("sse").token, "fresh");
});

test("authorize() throwing is a failed attempt (unavailable, retried), not failed", async () => {
  let n = 0;
  const { sub, clock, fk } = setup({
    authorize: async () => {
      if (++n === 1) throw new Error("auth endpoint down");
      return "ok";
    },
  });
  await flush();
  assert.equal(sub.state, "unavailable");
  assert.equal(sub.error.code, "authorize_failed");
  assert.equal(fk.made.length, 0);
  await untilNew(fk, clock);
  assert.equal(fk.last("sse").token, "ok");
});

test("permanent 400 from the poll endpoint: failed, everything stopped", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  fetch.auto = (call) => call.reply(400, { error: { code: "bad_channel", message: "channel name invalid" } });
  const fk = fakeTransports();
  const states = [];
  const infos = [];
  const sub = subscribe({
    channels: ["bad name!"],
    storage: null,
    fetch,
    transports: { sse: fk.transports.sse }, // default poll transport with the fake fetch
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    window: null,
    navigator: { onLine: true },
    onStateChange: (s, i) => {
      states.push(s);
      infos.push(i);
    },
  });
  await clock.advance(2000); // SSE silent (can't see the 400), poll started and gets the 400
  assert.equal(sub.state, "failed");
  assert.deepEqual(states, ["connecting", "failed"]);
  assert.equal(infos[1].error.status, 400);
  assert.equal(infos[1].error.code, "bad_channel");
  assert.equal(fk.last("sse").closed, true, "SSE candidate closed too");
  await clock.advance(10 * 60_000);
  assert.equal(fetch.calls.length, 1, "no retries after failed");
  assert.equal(fk.made.length, 1);
});

test("403 is permanent too; 5xx is not", async () => {
  const clock = new FakeClock();
  const mk = (status) => {
    const fetch = fakeFetch();
    fetch.auto = (call) => call.reply(status, { error: { code: "x" + status, message: "m" } });
    return {
      fetch,
      sub: subscribe({
        channels: ["a"],
        storage: null,
        EventSource: undefined,
        fetch,
        now: clock.now,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        window: null,
        navigator: { onLine: true },
      }),
    };
  };
  const forbidden = mk(403);
  const broken = mk(502);
  await flush();
  assert.equal(forbidden.sub.state, "failed");
  assert.equal(broken.sub.state, "unavailable");
  assert.equal(broken.sub.lives.poll, 2, "nothing opened in the attempt: the server is away, no life lost");
});

test("429 with Retry-After: no life lost, next request not before Retry-After", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  fetch.auto = (call) => {
    if (fetch.calls.length === 1) call.reply(429, { error: { code: "rate_limited", message: "slow down" } }, { "Retry-After": "7" });
    else if (fetch.calls.length === 2) call.reply(200, { events: [], cursor: "1" });
    // later long-polls stay pending
  };
  const sub = subscribe({
    channels: ["a"],
    storage: null,
    EventSource: undefined,
    fetch,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0,
    window: null,
    navigator: { onLine: true },
  });
  await flush();
  assert.equal(sub.state, "unavailable");
  assert.equal(sub.lives.poll, 2);
  await clock.advance(6999);
  assert.equal(fetch.calls.length, 1);
  await clock.advance(1);
  assert.equal(fetch.calls.length >= 2, true);
  assert.equal(sub.state, "connected");
  sub.close();
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(new Date(61_000).toUTCString(), 1000), 60_000);
  assert.equal(parseRetryAfter("garbage"), 0);
});

// ---------------------------------------------------------------------------------- real transports

test("real SSE transport: URL, default message events, reset event, error closes it", async () => {
  FakeEventSource.instances = [];
  const events = [];
  const t = makeSseTransport({
    url: "https://herald.test",
    channels: ["a", "private-build-1"],
    token: "jwt.x.y",
    cursor: () => "4711",
    env: { EventSource: FakeEventSource },
    options: { withCredentials: true },
    onOpen: () => events.push("open"),
    onNotice: (o) => events.push("notice:" + o.id),
    onReset: (h) => events.push("reset:" + h),
    onCursor: () => {},
    onClose: (i) => events.push("close:" + i.kind),
  });
  const es = FakeEventSource.instances[0];
  assert.equal(es.url.origin + es.url.pathname, "https://herald.test/v1/stream");
  assert.deepEqual(es.url.searchParams.getAll("channel"), ["a", "private-build-1"]);
  assert.equal(es.url.searchParams.get("events"), "message");
  assert.equal(es.url.searchParams.get("lastEventId"), "4711");
  assert.equal(es.url.searchParams.get("token"), "jwt.x.y");
  assert.deepEqual(es.init, { withCredentials: true });
  es.emitOpen();
  es.emitMessage(notice(4712));
  es.onmessage({ data: "not json" });
  es.emitNamed("reset", { cursor: "9000" });
  es.emitError();
  es.emitMessage(notice(4713)); // after the error: ignored
  assert.deepEqual(events, ["open", "notice:4712", "reset:9000", "close:unclean"]);
  assert.equal(es.closed, true, "browser auto-reconnect disabled; herald reconnects itself");
  t.close();
  assert.equal(makeSseTransport.isSupported({ EventSource: undefined }), false);
});

test("real SSE transport: event revoked ends it as fatal, with the server's code", () => {
  FakeEventSource.instances = [];
  const closes = [];
  makeSseTransport({
    url: "https://herald.test",
    channels: ["private-a"],
    token: null,
    cursor: () => null,
    env: { EventSource: FakeEventSource },
    options: {},
    onOpen: () => {},
    onNotice: () => closes.push("notice"),
    onReset: () => {},
    onCursor: () => {},
    onClose: (i) => closes.push(i),
  });
  const es = FakeEventSource.instances[0];
  es.emitOpen();
  es.emitNamed("revoked", { code: "token_revoked", message: "the token was revoked" });
  es.emitError(); // the server closes the stream next: no second close
  es.emitMessage(notice(1));
  assert.equal(closes.length, 1);
  assert.equal(closes[0].kind, "fatal");
  assert.equal(closes[0].code, "token_revoked");
  assert.deepEqual(closes[0].error, { status: 403, code: "token_revoked", message: "the token was revoked" });
  assert.equal(es.closed, true, "no browser auto-reconnect after a revocation");
});

test("real poll transport: head first, then long-polls with cursor, Bearer token, notices before cursor, abort on close", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  let cursor = null;
  const events = [];
  const t = makePollTransport({
    url: "https://herald.test",
    channels: ["a", "b"],
    token: "jwt",
    cursor: () => cursor,
    env: { fetch, AbortController, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now },
    options: { pollTimeout: 25, firstPollTimeout: 1, pollGrace: 10, minPollInterval: 1000, withCredentials: false },
    onOpen: () => events.push("open"),
    onNotice: (o) => {
      events.push("notice:" + o.id);
      cursor = o.id;
    },
    onReset: (h) => {
      events.push("reset:" + h);
      cursor = h;
    },
    onCursor: (c) => {
      events.push("cursor:" + c);
      cursor = c;
    },
    onClose: (i) => events.push("close:" + i.kind),
  });
  await flush();
  const c0 = fetch.calls[0];
  assert.equal(c0.url.origin + c0.url.pathname, "https://herald.test/v1/poll");
  assert.deepEqual(c0.channels, ["a", "b"]);
  assert.equal(c0.cursor, null);
  assert.equal(c0.auth, "Bearer jwt");
  c0.reply(200, { events: [], cursor: "100" });
  await flush();
  const c1 = fetch.calls[1];
  assert.equal(c1.cursor, "100");
  assert.equal(c1.timeout, "25");
  c1.reply(200, { events: [notice(101), notice(102)], cursor: "102" });
  await flush();
  fetch.calls[2].reply(410, { error: { code: "reset", message: "gone" }, cursor: "500" });
  await flush();
  assert.equal(fetch.calls[3].cursor, "500");
  assert.deepEqual(events, ["open", "cursor:100", "notice:101", "notice:102", "cursor:102", "reset:500"]);
  // client-side timeout: a hung request is aborted after timeout + grace
  await clock.advance(35_000);
  assert.equal(fetch.calls[3].aborted, true);
  assert.equal(events.at(-1), "close:unclean");
  t.close();
});

test("real poll transport: first poll with a known cursor uses timeout=1; close() aborts", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  const closes = [];
  const t = makePollTransport({
    url: "",
    channels: ["a"],
    token: null,
    cursor: () => "7",
    env: { fetch, AbortController, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now },
    options: { pollTimeout: 25, firstPollTimeout: 1, pollGrace: 10, minPollInterval: 1000 },
    onOpen: () => {},
    onNotice: () => {},
    onReset: () => {},
    onCursor: () => {},
    onClose: (i) => closes.push(i),
  });
  await flush();
  assert.equal(fetch.calls[0].timeout, "1");
  assert.equal(fetch.calls[0].auth, undefined, "no Authorization header without a token");
  assert.equal(fetch.calls[0].url.pathname, "/v1/poll");
  t.close();
  await flush();
  assert.equal(fetch.calls[0].aborted, true);
  assert.deepEqual(closes, [], "close() is not reported as a transport close");
});

test("real poll transport: an empty long-poll answer arriving too early delays the next poll (no hot loop)", async () => {
  const clock = new FakeClock();
  const fetch = fakeFetch();
  fetch.auto = (call) => call.reply(200, { events: [], cursor: "7" }); // a broken proxy answering at once
  const t = makePollTransport({
    url: "",
    channels: ["a"],
    token: null,
    cursor: () => "7",
    env: { fetch, AbortController, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now },
    options: { pollTimeout: 25, firstPollTimeout: 1, pollGrace: 10, minPollInterval: 1000 },
    onOpen: () => {},
    onNotice: () => {},
    onReset: () => {},
    onCursor: () => {},
    onClose: () => {},
  });
  await flush();
  assert.equal(fetch.calls.length, 1);
  await clock.advance(999);
  assert.equal(fetch.calls.length, 1);
  await clock.advance(1);
  assert.equal(fetch.calls.length, 2);
  await clock.advance(10_000);
  assert.ok(fetch.calls.length <= 12, "about one request per second, got " + fetch.calls.length);
  t.close();
  const n = fetch.calls.length;
  await clock.advance(10_000);
  assert.equal(fetch.calls.length, n, "nothing after close()");
});

// ---------------------------------------------------------------------------------- shareTabs

test("shareTabs: one tab holds the connection, the others get its notices; a follower takes over from the last cursor", async () => {
  const clock = new FakeClock();
  const tabs = fakeTabs();
  const mkTab = () => {
    const fk = fakeTransports();
    const got = [];
    const states = [];
    const sub = subscribe({
      url: "https://herald.test",
      channels: ["b", "a"],
      shareTabs: true,
      ...tabs,
      AbortController,
      storage: null,
      transports: fk.transports,
      now: clock.now,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      window: null,
      navigator: { onLine: true },
      onNotice: (n) => got.push(Number(n.id)),
      onStateChange: (s) => states.push(s),
    });
    return { sub, fk, got, states };
  };
  const A = mkTab();
  await flush();
  const B = mkTab();
  await flush();
  assert.equal(A.sub.leader, true);
  assert.equal(B.sub.leader, false);
  assert.equal(A.fk.made.length, 1);
  assert.equal(B.fk.made.length, 0, "the follower opens no connection");
  A.fk.last("sse").open();
  A.fk.last("sse").notice(1, 2, 3);
  await flush();
  assert.deepEqual(A.got, [1, 2, 3]);
  assert.deepEqual(B.got, [1, 2, 3]);
  assert.equal(B.sub.state, "connected");
  assert.equal(B.sub.transport, "sse");
  assert.equal(B.sub.cursor, "3");
  A.sub.close(); // leader tab goes away
  await flush();
  assert.equal(B.sub.leader, true);
  assert.equal(B.fk.made.length, 1);
  assert.equal(B.fk.last("sse").startCursor, "3", "new leader resumes from the shared cursor");
  B.fk.last("sse").open();
  B.fk.last("sse").notice(3, 4);
  assert.deepEqual(B.got, [1, 2, 3, 4]);
  assert.equal(B.sub.state, "connected");
  B.sub.close();
  assert.equal(B.fk.last("sse").closed, true);
});
