// herald/shared.js — shareTabs (rule 12 in /herald.js): one leader tab per url+channels,
// elected with a Web Lock, holds the connection (connection.js) and fans notices, resets,
// the cursor and its state out over a BroadcastChannel; the other tabs deliver them, deduped
// by seq the same way. When the leader goes, the next tab takes the lock and connects from
// the last cursor it saw.

import { baseUrl, safeCall } from "./env.js";
import { compareIds, epochChanged, justBefore, parseId } from "./cursor.js";
import { createConnection } from "./connection.js";

export function createShared(options, env) {
  const channels = Array.isArray(options.channels) ? options.channels.map(String) : [];
  const key = "herald:" + baseUrl(options.url) + "|" + channels.slice().sort().join(",");
  const bc = new env.BroadcastChannel(key);
  const abort = env.AbortController ? new env.AbortController() : null;
  let cursor = options.cursor !== undefined && options.cursor !== null ? String(options.cursor) : null;
  let state = "initialized";
  let transport = null;
  let lastError = null;
  let engine = null; // set while this tab is the leader
  let release = null;
  let closed = false;

  const setState = (next, info, force = false) => {
    if (next === state && !force) return;
    const previous = state;
    state = next;
    safeCall(options.onStateChange, next, Object.assign({ transport, error: lastError, previous }, info || {}));
  };
  const advance = (c) => {
    if (c === null || c === undefined || !parseId(c)) return;
    // the leader tab reports resets itself; only move forward within an epoch (or into the
    // first epoch learnt after a bare cursor)
    const d = cursor === null ? 1 : compareIds(c, cursor);
    if (d > 0 || (d === 0 && parseId(cursor).epoch === "")) cursor = String(c);
  };
  const post = (msg) => {
    try {
      bc.postMessage(msg);
    } catch (_) {
      /* ignore */
    }
  };
  const snapshot = () => ({ t: "state", state: engine ? engine.state : state, transport: engine ? engine.transport : transport, error: lastError, cursor });

  bc.onmessage = (ev) => {
    const m = ev && ev.data;
    if (!m || closed) return;
    if (m.t === "hello") {
      if (engine) post(snapshot());
      return;
    }
    if (engine) return; // the leader ignores other tabs' traffic
    if (m.t === "notice") {
      const id = m.obj && m.obj.id;
      if (parseId(id)) {
        if (cursor !== null && epochChanged(id, cursor)) {
          cursor = justBefore(id); // a new history: as the server's reset
          safeCall(options.onReset, { cursor });
        } else if (cursor !== null && compareIds(id, cursor) <= 0) return;
        cursor = String(id);
      }
      safeCall(options.onNotice, m.obj);
    } else if (m.t === "reset") {
      cursor = m.cursor === null || m.cursor === undefined ? null : String(m.cursor);
      safeCall(options.onReset, { cursor });
    } else if (m.t === "cursor") {
      advance(m.cursor);
    } else if (m.t === "state") {
      advance(m.cursor);
      const switched = transport !== (m.transport || null);
      transport = m.transport || null;
      lastError = m.error || null;
      setState(m.state === "closed" ? "connecting" : m.state, undefined, switched); // a closing leader hands over
    }
  };

  const lead = () =>
    new Promise((resolve) => {
      if (closed) return resolve();
      release = resolve;
      const opts = Object.assign({}, options, {
        cursor,
        shareTabs: false,
        onNotice: (obj) => {
          cursor = engine ? engine.cursor : cursor;
          post({ t: "notice", obj });
          safeCall(options.onNotice, obj);
        },
        onReset: (r) => {
          cursor = r.cursor;
          post({ t: "reset", cursor: r.cursor });
          safeCall(options.onReset, r);
        },
        onStateChange: (s, info) => {
          const switched = transport !== info.transport;
          transport = info.transport;
          lastError = info.error || null;
          post({ t: "state", state: s, transport, error: lastError, cursor });
          setState(s, info, switched);
        },
      });
      engine = createConnection(opts, env, {
        onStateChange: opts.onStateChange,
        onNotice: opts.onNotice,
        onReset: opts.onReset,
        onCursor: (c) => {
          cursor = c;
          post({ t: "cursor", cursor: c });
        },
      });
    });

  Promise.resolve().then(() => {
    if (closed) return;
    setState("connecting");
    post({ t: "hello" });
    const p = env.locks.request(key, abort ? { signal: abort.signal } : {}, lead);
    if (p && typeof p.catch === "function") p.catch(() => {}); // AbortError after close()
  });

  return {
    close() {
      if (closed) return;
      if (engine) {
        engine.close(); // broadcasts "closed": followers go back to connecting and one takes over
        engine = null;
      }
      closed = true;
      if (release) release();
      if (abort) abort.abort();
      try {
        bc.close();
      } catch (_) {
        /* ignore */
      }
      transport = null;
      setState("closed");
    },
    get state() {
      return state;
    },
    get transport() {
      return engine ? engine.transport : transport;
    },
    get cursor() {
      return engine ? engine.cursor : cursor;
    },
    get leader() {
      return !!engine;
    },
  };
}
