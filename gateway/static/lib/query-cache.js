// Named queries fetched from the gateway's JSON API and refetched when an event makes them
// stale. Invalidations are coalesced: the first one opens a window of `debounceMs` (fixed, not
// extended by later ones) and the window ends in one refetch. An invalidation that lands while
// that query's fetch is in flight costs exactly one more fetch after it, never a parallel one.

export class QueryCache {
  constructor({ debounceMs = 250, timers = globalThis } = {}) {
    this.debounceMs = debounceMs;
    this.timers = timers;
    this.queries = new Map();
  }

  /** Register `name`, fetched by `fetcher()` (a function returning a promise of the data). */
  define(name, fetcher) {
    const existing = this.queries.get(name);
    if (existing) {
      existing.fetcher = fetcher;
      return this;
    }
    this.queries.set(name, {
      name, fetcher, listeners: new Set(),
      data: undefined, error: null, status: "idle", updatedAt: null, fetchCount: 0,
      inFlight: null, again: false, stale: true, timer: null,
    });
    return this;
  }

  names() {
    return [...this.queries.keys()];
  }

  /** A snapshot of the query's state: { data, error, status, updatedAt, fetchCount }. */
  get(name) {
    const q = this._query(name);
    return { data: q.data, error: q.error, status: q.status, updatedAt: q.updatedAt, fetchCount: q.fetchCount };
  }

  /** Call `listener(state)` on every change; the first subscriber triggers a fetch if stale. */
  subscribe(name, listener) {
    const q = this._query(name);
    q.listeners.add(listener);
    if (q.status !== "idle") listener(this.get(name));
    if (q.stale && !q.inFlight && !q.timer) this._start(q);
    return () => q.listeners.delete(listener);
  }

  /** Mark queries stale; each one with subscribers refetches once at the end of its window. */
  invalidate(names) {
    for (const name of typeof names === "string" ? [names] : names) {
      const q = this.queries.get(name);
      if (!q) continue;
      q.stale = true;
      if (q.timer || q.listeners.size === 0) continue;
      q.timer = this.timers.setTimeout(() => this._flush(q), this.debounceMs);
    }
  }

  invalidateAll() {
    this.invalidate(this.names());
  }

  /** Fetch now (outside any window); resolves when that fetch (and any queued one) settles. */
  refetch(name) {
    const q = this._query(name);
    if (q.inFlight) {
      q.again = true;
      return q.inFlight;
    }
    return this._start(q);
  }

  _query(name) {
    const q = this.queries.get(name);
    if (!q) throw new Error(`unknown query "${name}" (define it first)`);
    return q;
  }

  _flush(q) {
    q.timer = null;
    if (q.inFlight) q.again = true;
    else this._start(q);
  }

  _start(q) {
    q.stale = false;
    q.again = false;
    q.fetchCount += 1;
    if (q.status === "idle") q.status = "loading";
    this._notify(q);
    q.inFlight = (async () => {
      try {
        q.data = await q.fetcher();
        q.error = null;
        q.status = "success";
        q.updatedAt = Date.now();
      } catch (error) {
        q.error = error;
        q.status = "error";
      }
      q.inFlight = null;
      this._notify(q);
      if (q.again) await this._start(q);
    })();
    return q.inFlight;
  }

  _notify(q) {
    const state = this.get(q.name);
    for (const listener of q.listeners) listener(state);
  }
}
