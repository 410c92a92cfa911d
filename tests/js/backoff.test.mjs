import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, backoffSchedule } from "../../gateway/static/lib/backoff.js";

test("the schedule doubles from one second and stops at thirty", () => {
  assert.deepEqual(backoffSchedule(7), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
});

test("jitter keeps each delay between half and all of the schedule", () => {
  for (let attempt = 0; attempt < 8; attempt++) {
    const full = backoffSchedule(attempt + 1)[attempt];
    assert.equal(backoffDelay(attempt, {}, () => 0), full / 2);
    assert.equal(backoffDelay(attempt, {}, () => 1), full);
    const drawn = backoffDelay(attempt);
    assert.ok(drawn >= full / 2 && drawn <= full, `${drawn} outside [${full / 2}, ${full}]`);
  }
});

test("clients that fail together spread out", () => {
  const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3)));
  assert.ok(delays.size > 25);
});

test("options change base, cap and jitter", () => {
  assert.deepEqual(backoffSchedule(4, { baseMs: 100, maxMs: 500 }), [100, 200, 400, 500]);
  assert.equal(backoffDelay(2, { baseMs: 100, jitter: 0 }, () => 0.3), 400);
});

test("a huge attempt number stays at the cap", () => {
  assert.equal(backoffDelay(5000, {}, () => 1), 30000);
});

test("a negative attempt is refused", () => {
  assert.throws(() => backoffDelay(-1), RangeError);
});
