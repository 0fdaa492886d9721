// herald/cache.js — the transport cache (rule 2 in /herald.js): the transport that last won,
// remembered in storage (localStorage unless the app passes another, or null) for cacheTTL,
// so the next page load tries it alone. Only an optimisation: storage errors are ignored.

export const STORAGE_KEY = "herald.transport";

export function readCache(storage, now, ttl) {
  if (!storage) return null;
  try {
    const raw = storage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const v = JSON.parse(raw);
    if (!v || typeof v.transport !== "string" || typeof v.timestamp !== "number") return null;
    if (now - v.timestamp >= ttl || now < v.timestamp) {
      storage.removeItem(STORAGE_KEY);
      return null;
    }
    return v.transport;
  } catch (_) {
    return null;
  }
}

export function writeCache(storage, transport, now) {
  if (!storage) return;
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify({ transport, timestamp: now }));
  } catch (_) {
    /* quota / disabled storage: caching is only an optimisation */
  }
}

export function clearCache(storage) {
  if (!storage) return;
  try {
    storage.removeItem(STORAGE_KEY);
  } catch (_) {
    /* ignore */
  }
}
