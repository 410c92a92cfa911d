// Events may arrive twice after a resume (the gateway promises at-least-once); each event's
// own bus id lets the client drop the copies. The memory is bounded: the oldest ids go first.

export class SeenIds {
  constructor(capacity = 5000) {
    this.capacity = capacity;
    this.ids = new Set();
  }

  /** True the first time `id` is offered, false for a repeat (ids without a value always pass). */
  add(id) {
    if (id === undefined || id === null || id === "") return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      this.ids.delete(this.ids.values().next().value);
    }
    return true;
  }

  has(id) {
    return this.ids.has(id);
  }

  get size() {
    return this.ids.size;
  }
}

/**
 * The part of a stream message not seen before, or null when every event in it is a repeat.
 * A truncated batch keeps its full count minus the repeats it can see.
 */
export function withoutDuplicates(message, seen) {
  const events = Array.isArray(message.events) ? message.events : [];
  const fresh = events.filter((event) => seen.add(event.id));
  if (events.length > 0 && fresh.length === 0) return null;
  const repeats = events.length - fresh.length;
  const count = Math.max(fresh.length, (message.count ?? events.length) - repeats);
  return { ...message, events: fresh, count };
}
