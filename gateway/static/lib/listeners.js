// What a connection offers its page, whichever kind it is (RealtimeConnection, or the
// TabSharedConnection that shares one across tabs): handlers by event type, status and reset
// listeners, and the link that keeps a QueryCache fresh.

import { EVENT_TYPES, queriesFor } from "./invalidation.js";

export class Listeners {
  constructor() {
    this.handlers = new Map(); // type or "*" -> Set(handler)
    this.statusListeners = new Set();
    this.resetListeners = new Set();
  }

  /**
   * The connection's state now (phase, reason, times); each kind of connection defines it.
   * @returns {Record<string, any>}
   */
  get status() {
    throw new Error("a connection must define its status");
  }

  /** `handler(message)` for each new message of `types` (a type, a list of types, or "*"). */
  subscribe(types, handler) {
    const list = types === "*" ? ["*"] : [].concat(types);
    for (const type of list) {
      if (type !== "*" && !EVENT_TYPES.includes(type)) throw new Error(`unknown event type "${type}"`);
      if (!this.handlers.has(type)) this.handlers.set(type, new Set());
      this.handlers.get(type).add(handler);
    }
    return () => list.forEach((type) => this.handlers.get(type)?.delete(handler));
  }

  /** `listener(status)` now and on every change. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  /** Called when the client may have missed events (a `reset`, or a reconnect that did not resume). */
  onReset(listener) {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  /** Keep a QueryCache fresh: each message invalidates its queries; a reset invalidates all. */
  attach(cache) {
    const offMessages = this.subscribe("*", (message) => cache.invalidate(queriesFor(message.type)));
    const offReset = this.onReset(() => cache.invalidateAll());
    return () => { offMessages(); offReset(); };
  }

  _handOut(message) {
    for (const key of [message.type, "*"]) {
      for (const handler of this.handlers.get(key) ?? []) handler(message);
    }
  }

  _emitReset(reason) {
    for (const listener of this.resetListeners) listener(reason);
  }

  _emitStatus() {
    const snapshot = this.status;
    for (const listener of this.statusListeners) listener(snapshot);
  }
}
