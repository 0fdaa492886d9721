// herald/cursor.js — ids and cursors, "<epoch>.<seq>" (rules 6 and 7 in /herald.js). Seqs
// compare only within one epoch; a bare "<seq>" (an older server, or a cursor the app
// stored) compares with any epoch. A notice of another epoch starts a new history.

import { safeCall } from "./env.js";

// parseId reads an id or cursor: "<epoch>.<seq>", or a bare "<seq>" (epoch ""); null if neither.
export function parseId(id) {
  if (id === null || id === undefined) return null;
  const m = /^(?:([a-z0-9]{1,16})\.)?(\d+)$/.exec(String(id));
  return m ? { epoch: m[1] || "", seq: Number(m[2]) } : null;
}

// compareIds orders two ids: <0, 0, >0 within one epoch (a bare one matches any), NaN across
// epochs (another history: not comparable), or when either is not an id.
export function compareIds(a, b) {
  const x = parseId(a);
  const y = parseId(b);
  if (!x || !y) return NaN;
  if (x.epoch !== y.epoch && x.epoch !== "" && y.epoch !== "") return NaN;
  return x.seq - y.seq;
}

// epochChanged reports whether id belongs to another epoch than cursor (both known).
export function epochChanged(id, cursor) {
  const x = parseId(id);
  const y = parseId(cursor);
  return !!(x && y && x.epoch !== "" && y.epoch !== "" && x.epoch !== y.epoch);
}

// justBefore is the cursor right before id, in its epoch.
export function justBefore(id) {
  const x = parseId(id);
  return x.epoch ? x.epoch + "." + Math.max(0, x.seq - 1) : String(Math.max(0, x.seq - 1));
}

// cursorMethods are the Connection's (connection.js) delivery: one cursor across transports,
// nothing delivered twice, a new epoch handled as the server's reset (rules 6 and 7).
export const cursorMethods = {
  deliver(obj) {
    if (parseId(obj.id)) {
      if (this.cursor !== null && epochChanged(obj.id, this.cursor)) this.doReset(justBefore(obj.id)); // a new history
      else if (this.cursor !== null && compareIds(obj.id, this.cursor) <= 0) return; // duplicate (replay after a switch)
      this.cursor = String(obj.id);
    }
    safeCall(this.hooks.onNotice, obj);
  },

  doReset(head) {
    this.cursor = head === null || head === undefined ? null : String(head);
    safeCall(this.hooks.onReset, { cursor: this.cursor });
  },

  // advance takes a poll answer's cursor: forward only.
  advance(c) {
    if (c === null || c === undefined || !parseId(c)) return;
    if (this.cursor !== null && epochChanged(c, this.cursor)) return this.doReset(String(c)); // a new history
    // forward only; a bare cursor takes the server's epoch at the same seq
    const d = this.cursor === null ? 1 : compareIds(c, this.cursor);
    if (d > 0 || (d === 0 && String(c) !== this.cursor && parseId(this.cursor).epoch === "")) {
      this.cursor = String(c);
      this.hooks.onCursor && this.hooks.onCursor(this.cursor);
    }
  },

  // learnHead takes the head SSE asked for before opening: with no cursor yet, it becomes the
  // cursor at once, so a stream that breaks before its first notice (or before it opened)
  // resumes there.
  learnHead(h) {
    if (this.cursor === null && parseId(h)) {
      this.cursor = String(h);
      this.hooks.onCursor && this.hooks.onCursor(this.cursor);
    }
  },
};
