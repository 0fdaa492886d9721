// herald.js with no cursor yet: it learns the head before it opens its EventSource, so a
// stream that breaks before its first notice resumes from there (docs/PROTOCOL.md, "The
// opening block"; rule 6 in herald.js). Run with `node --test web/`; fake timers,
// BroadcastChannel and Web Locks from fakes.mjs, fake fetch and EventSource here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe } from "./herald.js";
import { flush, FakeClock, fakeTabs } from "./fakes.mjs";

// fakeServer: EventSource and fetch of one origin. Every poll request is answered by
// server.poll(call) (default: the head, at once); every EventSource is recorded.
function fakeServer(head) {
  const server = { head, sources: [], polls: [], poll: null };
  class ES {
    constructor(url) {
      this.url = new URL(url, "http://origin.test");
      this.closed = false;
      this.listeners = {};
      server.sources.push(this);
    }
    addEventListener(type, fn) {
      (this.listeners[type] ||= []).push(fn);
    }
    close() {
      this.closed = true;
    }
    get from() {
      return this.url.searchParams.get("lastEventId");
    }
  }
  server.EventSource = ES;
  server.fetch = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(url, "http://origin.test");
      const call = {
        url: u,
        cursor: u.searchParams.get("cursor"),
        auth: init.headers && init.headers.Authorization,
        reply: (status, body, headers = {}) => resolve(new Response(JSON.stringify(body), { status, headers })),
        fail: () => reject(new TypeError("Failed to fetch")),
      };
      if (init.signal) init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
      server.polls.push(call);
      if (server.poll) server.poll(call);
      else if (call.cursor === null) call.reply(200, { events: [], cursor: server.head });
    });
  return server;
}

// until advances the clock in 50 ms steps until cond() holds (at most limit ms).
async function until(clock, cond, limit = 60_000) {
  const start = clock.now();
  while (!cond()) {
    if (clock.now() - start > limit) throw new Error("condition not met within " + limit + " ms");
    await clock.advance(50);
  }
}

const heads = (server) => server.polls.filter((c) => c.cursor === null).length;

const notice = (id) => ({ id, channel: "a", type: "t", data: { id } });

function sub(server, clock, extra = {}) {
  const rec = { notices: [], resets: [], states: [] };
  const s = subscribe({
    url: "https://herald.test",
    channels: ["a"],
    storage: null,
    EventSource: server.EventSource,
    fetch: server.fetch,
    AbortController,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    window: null,
    navigator: { onLine: true },
    onNotice: (n) => rec.notices.push(n.id),
    onReset: (r) => rec.resets.push(r.cursor),
    onStateChange: (st) => rec.states.push(st),
    ...extra,
  });
  return { s, rec };
}

test("no cursor: the head first, then the EventSource from it; a stream that breaks before any notice resumes there", async () => {
  const clock = new FakeClock();
  const server = fakeServer("ep1.41");
  const { s, rec } = sub(server, clock, { token: "tok" });
  await flush();
  assert.equal(server.polls.length, 1, "one head request");
  assert.equal(server.polls[0].cursor, null);
  assert.equal(server.polls[0].auth, "Bearer tok");
  assert.equal(server.sources.length, 1);
  const es = server.sources[0];
  assert.equal(es.from, "ep1.41", "the EventSource opens from the head it learnt");
  assert.equal(s.cursor, "ep1.41", "the head is the cursor before any notice");
  es.onopen({});
  assert.equal(s.state, "connected");
  es.onerror({}); // herald crashed before the first notice
  await until(clock, () => server.sources.length === 2);
  assert.equal(server.sources[1].from, "ep1.41", "resumes from the head, not live");
  assert.equal(heads(server), 1, "no second head request: there is a cursor now");
  server.sources[1].onopen({});
  server.sources[1].onmessage({ data: JSON.stringify(notice("ep1.42")) });
  server.sources[1].onmessage({ data: JSON.stringify(notice("ep1.43")) });
  assert.deepEqual(rec.notices, ["ep1.42", "ep1.43"]);
  assert.deepEqual(rec.resets, []);
  s.close();
});

test("with a cursor: no head request, the EventSource opens from the cursor at once", async () => {
  const clock = new FakeClock();
  const server = fakeServer("ep1.41");
  const { s } = sub(server, clock, { cursor: "ep1.7" });
  await flush();
  assert.equal(server.polls.length, 0);
  assert.equal(server.sources[0].from, "ep1.7");
  s.close();
});

test("the head request: a network error fails the attempt (no live stream); a 404 opens live as before; 503 waits Retry-After", async () => {
  const clock = new FakeClock();
  const server = fakeServer("ep1.5");
  let answer = (call) => call.fail();
  server.poll = (call) => answer(call);
  const { s, rec } = sub(server, clock, { transports: { poll: null } });
  await flush();
  assert.equal(server.sources.length, 0, "no EventSource while the head is unknown and herald unreachable");
  assert.equal(s.state, "unavailable");
  assert.equal(s.cursor, null);
  assert.equal(s.error.code, "network");

  answer = (call) => call.reply(503, { error: { code: "unavailable", message: "db" } }, { "Retry-After": "9" });
  await until(clock, () => server.polls.length === 2);
  assert.equal(server.sources.length, 0);
  assert.ok(rec.states.at(-1) === "unavailable");
  await clock.advance(8_900);
  assert.equal(server.polls.length, 2, "not before Retry-After");

  answer = (call) => call.reply(404, { error: { code: "not_found", message: "no such route" } });
  await until(clock, () => server.polls.length === 3, 1_000);
  assert.equal(server.sources.length, 1, "a proxy that only routes the stream: SSE opens anyway");
  assert.equal(server.sources[0].from, null, "live, as without fetch");
  s.close();
});

test("close() while the head request is pending: no EventSource, the request is aborted", async () => {
  const clock = new FakeClock();
  const server = fakeServer("ep1.5");
  let pending = null;
  server.poll = (call) => (pending = call);
  const { s } = sub(server, clock, { transports: { poll: null } });
  await flush();
  assert.ok(pending);
  s.close();
  pending.reply(200, { events: [], cursor: "ep1.5" });
  await flush();
  assert.equal(server.sources.length, 0);
});

// Two tabs sharing one connection (fakeTabs from fakes.mjs).
test("shareTabs: the head the leader learnt is the followers' cursor; the next leader resumes from it", async () => {
  const clock = new FakeClock();
  const tabs = fakeTabs();
  const server = fakeServer("ep1.41");
  const A = sub(server, clock, { shareTabs: true, ...tabs });
  await flush();
  const B = sub(server, clock, { shareTabs: true, ...tabs });
  await flush();
  assert.equal(A.s.leader, true);
  assert.equal(server.sources.length, 1);
  server.sources[0].onopen({});
  await flush();
  assert.equal(B.s.cursor, "ep1.41", "the follower holds the head before any notice");
  A.s.close(); // the leader tab goes away before the first notice
  await flush();
  assert.equal(B.s.leader, true);
  assert.equal(server.sources.length, 2);
  assert.equal(server.sources[1].from, "ep1.41", "the new leader resumes from the head, not live");
  assert.equal(heads(server), 1, "and asks for no head of its own");
  server.sources[1].onopen({});
  server.sources[1].onmessage({ data: JSON.stringify(notice("ep1.42")) });
  assert.deepEqual(B.rec.notices, ["ep1.42"]);
  B.s.close();
});
