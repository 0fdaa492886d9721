// Type declarations for herald.js, the browser client of herald (SSE first,
// long-poll fallback). herald.js is plain JavaScript and stays so: it is
// served unbundled at /herald.js, with the modules it imports at
// /herald/*.js; these types describe its exports (the public API; the
// modules are internal) for TypeScript users who install it as a package.

/** A cursor: the id of the last notice received. Opaque; send it back as is. */
export type Cursor = string;

/** One notice: ids and states, not documents (fetch the data from your app). */
export interface Notice<D extends object = Record<string, unknown>> {
  /** The notice's cursor. */
  id: Cursor;
  channel: string;
  /** The notice's type, "message" unless the publisher set one. */
  type: string;
  /** The app's JSON object. */
  data: D;
  /** When herald sequenced it (RFC 3339). */
  at: string;
}

/** Connection states, reported by onStateChange only on change. */
export type State = "connecting" | "connected" | "unavailable" | "offline" | "failed" | "closed";

export type TransportName = "sse" | "poll";

/** What went wrong: herald's error code and message, and the HTTP status if any. */
export interface HeraldError {
  status?: number;
  code?: string;
  message: string;
}

export interface StateInfo {
  /** The transport in use; null unless connected. */
  transport: TransportName | null;
  error: HeraldError | null;
  previous: State;
  /** Milliseconds until the next attempt, in state `unavailable`. */
  retryIn?: number;
}

export interface ResetInfo {
  /** Where the stream continues from: the server's head. */
  cursor: Cursor | null;
}

/** Minimal Storage (localStorage) used to remember the working transport. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What ends a transport, reported to the connection engine. */
export interface TransportCloseInfo {
  kind: "unclean" | "clean" | "throttle" | "auth" | "fatal";
  status?: number;
  code?: string;
  error?: HeraldError;
  /** Milliseconds, for kind "throttle". */
  retryAfter?: number;
}

/** The context a transport factory is called with. */
export interface TransportContext {
  url: string;
  channels: string[];
  token: string | null;
  cursor(): Cursor | null;
  env: Record<string, unknown>;
  options: Options;
  onOpen(): void;
  onNotice(notice: Notice): void;
  onReset(head: Cursor | null): void;
  onCursor(cursor: Cursor): void;
  onClose(info: TransportCloseInfo): void;
}

export interface Transport {
  close(): void;
}

export interface TransportFactory {
  (ctx: TransportContext): Transport;
  isSupported?(env: Record<string, unknown>): boolean;
}

/** Tunables; every one has a default in DEFAULTS. Times in milliseconds unless noted. */
export interface Options {
  fallbackDelay: number;
  lives: number;
  cacheTTL: number;
  stableAfter: number;
  connectTimeout: number;
  backoffMin: number;
  backoffMax: number;
  /** Seconds (server maximum 60). */
  pollTimeout: number;
  /** Seconds, for the first poll that carries a cursor. */
  firstPollTimeout: number;
  /** Seconds added to the poll timeout before the client aborts the request. */
  pollGrace: number;
  minPollInterval: number;
  withCredentials: boolean;
  shareTabs: boolean;
}

export interface SubscribeOptions<D extends object = Record<string, unknown>> extends Partial<Options> {
  /** herald's base URL, e.g. "https://herald.example" ("" for the page's origin). */
  url?: string;
  channels: string[];
  /** A token (JWT) for private channels. */
  token?: string | null;
  /** Called for a (new) token when there is none or it expired. */
  authorize?: () => Promise<string> | string;
  /** Resume after this cursor (one you stored). */
  cursor?: Cursor | null;
  onNotice?: (notice: Notice<D>) => void;
  /** History after your cursor is gone: refetch your full state. */
  onReset?: (info: ResetInfo) => void;
  onStateChange?: (state: State, info: StateInfo) => void;
  /** Replace or add transports (tests, unusual environments). */
  transports?: Partial<Record<TransportName, TransportFactory>>;
  /** null disables the transport cache. */
  storage?: StorageLike | null;
  now?: () => number;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  window?: unknown;
  navigator?: unknown;
  EventSource?: unknown;
  fetch?: typeof globalThis.fetch;
  AbortController?: unknown;
  BroadcastChannel?: unknown;
  locks?: unknown;
}

export interface Subscription {
  readonly state: State;
  readonly transport: TransportName | null;
  readonly cursor: Cursor | null;
  close(): void;
}

/** Subscribes to channels; SSE first, long-poll when the stream cannot open. */
export function subscribe<D extends object = Record<string, unknown>>(options: SubscribeOptions<D>): Subscription;

export const STORAGE_KEY: "herald.transport";
export const DEFAULTS: Readonly<Options>;

/** Retry-After (delta seconds or an HTTP date) in milliseconds; 0 when absent or invalid. */
export function parseRetryAfter(value: string | null | undefined, now?: number): number;
/** Capped exponential backoff with jitter, for the n-th consecutive failure (n >= 1). */
export function backoffDelay(n: number, limits: { backoffMin: number; backoffMax: number }, random?: () => number): number;
export function readCache(storage: StorageLike | null, now: number, ttl: number): TransportName | string | null;
export function writeCache(storage: StorageLike | null, transport: string, now: number): void;
export const makeSseTransport: TransportFactory;
export const makePollTransport: TransportFactory;
/** Internals for herald's own tests; not a stable API. */
export const _internal: Record<string, unknown>;
