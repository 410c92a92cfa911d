// Event rates per type from successive /api/realtime/stats snapshots (counters only grow,
// except at midnight UTC or a gateway restart; a drop is read as a fresh start, not a
// negative rate).

export class RateTracker {
  constructor({ keep = 60 } = {}) {
    this.keep = keep;
    this.previous = null;
    this.samples = []; // [{ at, rates: { TYPE: { published, delivered } } }]
  }

  /** Add a snapshot taken at `at` (ms); returns the rates per second since the previous one. */
  push(stats, at) {
    const counters = {};
    for (const [type, c] of Object.entries(stats.types ?? {})) {
      counters[type] = { published: c.publishedToday ?? 0, delivered: c.delivered ?? 0 };
    }
    let rates = null;
    if (this.previous && at > this.previous.at) {
      const seconds = (at - this.previous.at) / 1000;
      rates = {};
      for (const [type, now] of Object.entries(counters)) {
        const before = this.previous.counters[type] ?? { published: 0, delivered: 0 };
        rates[type] = {
          published: rate(now.published, before.published, seconds),
          delivered: rate(now.delivered, before.delivered, seconds),
        };
      }
      this.samples.push({ at, rates });
      if (this.samples.length > this.keep) this.samples.shift();
    }
    this.previous = { at, counters };
    return rates;
  }

  /** The last `keep` rates of one type and counter, oldest first (0 where the type was absent). */
  series(type, counter = "delivered") {
    return this.samples.map((s) => s.rates[type]?.[counter] ?? 0);
  }
}

function rate(now, before, seconds) {
  const delta = now >= before ? now - before : now;
  return delta / seconds;
}
