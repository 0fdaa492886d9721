// herald/poll.js — the "poll" transport: fetch on GET /v1/poll in a loop (rules 1 and 6 in
// /herald.js). The factory contract is in transports.js.

import { closeInfo } from "./errors.js";
import { channelQuery, parseJson } from "./env.js";

export function makePollTransport(ctx) {
  const { env, options } = ctx;
  let done = false;
  let ctrl = null;
  let timer = null;
  let opened = false;

  const stop = () => {
    done = true;
    if (timer !== null) env.clearTimeout(timer);
    timer = null;
    if (ctrl) {
      try {
        ctrl.abort();
      } catch (_) {
        /* ignore */
      }
    }
  };
  const end = (info) => {
    if (done) return;
    stop();
    ctx.onClose(info);
  };
  const open = () => {
    if (!opened) {
      opened = true;
      ctx.onOpen();
    }
    return !done;
  };

  async function loop() {
    while (!done) {
      const cur = ctx.cursor();
      const q = channelQuery(ctx.channels);
      let wait = 0;
      if (cur !== null && cur !== undefined) {
        wait = opened ? options.pollTimeout : options.firstPollTimeout;
        q.push("cursor=" + encodeURIComponent(cur), "timeout=" + wait);
      }
      const headers = { Accept: "application/json" };
      if (ctx.token) headers.Authorization = "Bearer " + ctx.token;
      ctrl = env.AbortController ? new env.AbortController() : null;
      let timedOut = false;
      timer = env.setTimeout(() => {
        timedOut = true;
        if (ctrl) ctrl.abort();
      }, (wait + options.pollGrace) * 1000);
      const started = env.now();
      let res;
      let text;
      try {
        res = await env.fetch(ctx.url + "/v1/poll?" + q.join("&"), {
          method: "GET",
          headers,
          cache: "no-store",
          credentials: options.withCredentials ? "include" : "same-origin",
          signal: ctrl ? ctrl.signal : undefined,
        });
        text = await res.text();
      } catch (e) {
        if (done) return;
        return end({
          kind: "unclean",
          error: timedOut
            ? { code: "timeout", message: "poll request timed out" }
            : { code: "network", message: String((e && e.message) || e) },
        });
      } finally {
        if (timer !== null) env.clearTimeout(timer);
        timer = null;
      }
      if (done) return;
      const status = res.status;
      const body = parseJson(text);
      if (status === 200) {
        if (!body || !Array.isArray(body.events)) {
          return end({ kind: "unclean", status, error: { status, code: "bad_response", message: "unexpected poll answer" } });
        }
        if (!open()) return;
        for (const ev of body.events) {
          if (done) return;
          if (ev && typeof ev === "object") ctx.onNotice(ev);
        }
        if (done) return;
        // after the notices: the answer's cursor is the last seq returned (or the head)
        if (body.cursor !== undefined && body.cursor !== null) ctx.onCursor(String(body.cursor));
        if (!body.events.length && wait > 0 && env.now() - started < options.minPollInterval) {
          // an empty answer well before the timeout (misbehaving proxy/cache): don't spin
          await new Promise((resolve) => {
            timer = env.setTimeout(resolve, options.minPollInterval);
          });
          timer = null;
        }
      } else if (status === 410) {
        if (!open()) return;
        ctx.onReset(body && body.cursor !== undefined && body.cursor !== null ? String(body.cursor) : null);
      } else {
        return end(closeInfo(res, body, env));
      }
    }
  }

  Promise.resolve().then(loop).catch((e) => end({ kind: "unclean", error: { code: "internal", message: String(e) } }));
  return { close: stop };
}
makePollTransport.isSupported = (env) => typeof env.fetch === "function";
