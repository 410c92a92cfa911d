// A manual clock for the client's timers: nothing runs until the test advances time.

export class FakeTimers {
  constructor() {
    this.time = 0;
    this.nextId = 1;
    this.pending = new Map(); // id -> { at, fn }
  }

  now = () => this.time;

  setTimeout = (fn, ms = 0) => {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + ms, fn });
    return id;
  };

  clearTimeout = (id) => {
    this.pending.delete(id);
  };

  /** Run every timer due within `ms`, in time order, letting promises settle in between. */
  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = end;
    await settle();
  }
}

export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve/reject handles, for fetches a test finishes when it chooses. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
