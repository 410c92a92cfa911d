import assert from "node:assert/strict";
import { test } from "node:test";

import { SeenIds, withoutDuplicates } from "../../gateway/static/lib/dedupe.js";

const event = (id) => ({ id, type: "INVENTORY_CHANGE", payload: { id: `p${id}`, action: "updated" } });

test("an id is new once", () => {
  const seen = new SeenIds();
  assert.equal(seen.add("1-0"), true);
  assert.equal(seen.add("1-0"), false);
  assert.equal(seen.add(undefined), true);
});

test("the memory is bounded and forgets the oldest first", () => {
  const seen = new SeenIds(3);
  for (const id of ["a", "b", "c", "d"]) seen.add(id);
  assert.equal(seen.size, 3);
  assert.equal(seen.has("a"), false);
  assert.equal(seen.has("d"), true);
});

test("a message replayed after a resume is dropped whole", () => {
  const seen = new SeenIds();
  const message = { type: "INVENTORY_CHANGE", count: 2, events: [event("1-0"), event("2-0")] };
  assert.deepEqual(withoutDuplicates(message, seen), message);
  assert.equal(withoutDuplicates(message, seen), null);
});

test("a batch that overlaps what was seen keeps only the new events", () => {
  const seen = new SeenIds();
  withoutDuplicates({ type: "INVENTORY_CHANGE", count: 1, events: [event("1-0")] }, seen);
  const fresh = withoutDuplicates({ type: "INVENTORY_CHANGE", count: 3, events: [event("1-0"), event("2-0"), event("3-0")] }, seen);
  assert.equal(fresh.count, 2);
  assert.deepEqual(fresh.events.map((e) => e.id), ["2-0", "3-0"]);
});

test("a truncated batch keeps its full count", () => {
  const seen = new SeenIds();
  const fresh = withoutDuplicates({ type: "INVENTORY_CHANGE", count: 500, truncated: true, events: [event("1-0")] }, seen);
  assert.equal(fresh.count, 500);
  assert.equal(fresh.truncated, true);
});
