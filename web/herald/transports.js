// herald/transports.js — the transports herald.js knows, in order of preference (rule 1 in
// /herald.js), and the contract a transport factory keeps (sse.js, poll.js, or the app's own
// through the `transports` option).
//
// A transport factory is called as factory(ctx) and returns {close()}. ctx holds:
//   url (base, no trailing slash), channels, token (string|null), cursor() -> current cursor
//   (string|null), env (resolved environment), options (pollTimeout, firstPollTimeout,
//   pollGrace, minPollInterval, withCredentials), and callbacks:
//   onOpen()            the transport is connected (SSE open / first poll answer)
//   onNotice(obj)       a notice object (the core dedupes by seq)
//   onReset(head)       the server reset the cursor to head
//   onCursor(cursor)    the poll answer's cursor (moves the core cursor forward only)
//   onHead(head)        SSE learnt the head before opening (the cursor, when it has none)
//   onClose(info)       the transport ended by itself; info is described in errors.js:
//                       kind "unclean" (costs a life), "clean", "throttle" ({retryAfter} ms),
//                       "auth" (401 token_expired), "fatal" (permanent 4xx);
//                       plus status, code, error.
// After close() (or after it called onClose) a transport must not call back any more; the
// core ignores late callbacks anyway.
// A factory may carry isSupported(env) -> boolean.

import { makeSseTransport } from "./sse.js";
import { makePollTransport } from "./poll.js";

export const ORDER = ["sse", "poll"];

// TRANSPORTS are the built-in factories, by name; options.transports replaces or adds some.
export const TRANSPORTS = Object.freeze({ sse: makeSseTransport, poll: makePollTransport });
