// Reconnect delays: exponential growth with "equal jitter", so that a gateway restart is
// not met by every dashboard reconnecting in the same millisecond.

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 1000, factor: 2, maxMs: 30000, jitter: 0.5 });

/**
 * Delay before reconnect attempt `attempt` (0 = the first retry after a drop).
 * The un-jittered delay is base * factor^attempt, capped at maxMs; jitter j keeps a share
 * (1 - j) of it fixed and draws the rest uniformly, so the result lies in [(1-j)·d, d].
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { baseMs, factor, maxMs, jitter } = { ...DEFAULT_BACKOFF, ...options };
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  }
  const ceiling = Math.min(maxMs, baseMs * factor ** Math.min(attempt, 52));
  return Math.round(ceiling * (1 - jitter) + ceiling * jitter * random());
}

/** The un-jittered schedule (for display and tests): [d0, d1, ...]. */
export function backoffSchedule(attempts, options = {}) {
  return Array.from({ length: attempts }, (_, i) => backoffDelay(i, options, () => 1));
}
