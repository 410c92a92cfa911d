import assert from "node:assert/strict";
import { test } from "node:test";

import { QueryCache } from "../../gateway/static/lib/query-cache.js";
import { deferred, FakeTimers, settle } from "./fake-timers.mjs";

function setup(debounceMs = 200) {
  const timers = new FakeTimers();
  const cache = new QueryCache({ debounceMs, timers });
  const calls = [];
  let pending = null;
  cache.define("products", () => {
    calls.push(timers.now());
    if (pending) return pending.promise;
    return Promise.resolve({ items: [calls.length] });
  });
  return { timers, cache, calls, hold: () => { pending = deferred(); return pending; }, release: () => { pending = null; } };
}

test("the first subscriber fetches and receives the data", async () => {
  const { cache, calls } = setup();
  const states = [];
  cache.subscribe("products", (s) => states.push(s));
  await settle();
  assert.equal(calls.length, 1);
  assert.deepEqual(states.at(-1).data, { items: [1] });
  assert.equal(states.at(-1).status, "success");
});

test("many invalidations inside one window cause one refetch", async () => {
  const { cache, calls, timers } = setup(200);
  cache.subscribe("products", () => {});
  await settle();
  for (let i = 0; i < 50; i++) {
    cache.invalidate(["products"]);
    await timers.advance(3);
  }
  await timers.advance(200);
  assert.equal(calls.length, 2);
  assert.deepEqual(cache.get("products").data, { items: [2] });
});

test("the window is fixed from the first invalidation, not extended by later ones", async () => {
  const { cache, calls, timers } = setup(200);
  cache.subscribe("products", () => {});
  await settle();
  cache.invalidate("products");
  await timers.advance(150);
  cache.invalidate("products");
  await timers.advance(60);
  assert.deepEqual(calls, [0, 200]);
});

test("an invalidation while a fetch is in flight refetches once more, after it", async () => {
  const { cache, calls, timers, hold, release } = setup(100);
  cache.subscribe("products", () => {});
  await settle();
  const slow = hold();
  cache.invalidate("products");
  await timers.advance(100); // fetch 2 starts and hangs
  assert.equal(calls.length, 2);
  for (let i = 0; i < 5; i++) {
    cache.invalidate("products");
    await timers.advance(150); // windows end while fetch 2 is still in flight
  }
  assert.equal(calls.length, 2, "no parallel fetch while one is in flight");
  release();
  slow.resolve({ items: ["old"] });
  await timers.advance(0);
  assert.equal(calls.length, 3, "exactly one more fetch");
  await timers.advance(1000);
  assert.equal(calls.length, 3);
  assert.deepEqual(cache.get("products").data, { items: [3] });
});

test("a query nobody watches is only marked stale, and fetched on its next subscriber", async () => {
  const { cache, calls, timers } = setup();
  cache.invalidate("products");
  await timers.advance(1000);
  assert.equal(calls.length, 0);
  cache.subscribe("products", () => {});
  await settle();
  assert.equal(calls.length, 1);
});

test("invalidateAll refetches every watched query once", async () => {
  const timers = new FakeTimers();
  const cache = new QueryCache({ debounceMs: 50, timers });
  const counts = { products: 0, orders: 0 };
  for (const name of Object.keys(counts)) cache.define(name, async () => ++counts[name]);
  cache.subscribe("products", () => {});
  cache.subscribe("orders", () => {});
  await settle();
  cache.invalidateAll();
  cache.invalidate(["orders", "unknown-query"]);
  await timers.advance(50);
  assert.deepEqual(counts, { products: 2, orders: 2 });
});

test("a failed fetch keeps the last data and reports the error", async () => {
  const timers = new FakeTimers();
  const cache = new QueryCache({ debounceMs: 10, timers });
  let fail = false;
  cache.define("orders", async () => { if (fail) throw new Error("HTTP 503"); return [1]; });
  cache.subscribe("orders", () => {});
  await settle();
  fail = true;
  cache.invalidate("orders");
  await timers.advance(10);
  const state = cache.get("orders");
  assert.equal(state.status, "error");
  assert.equal(state.error.message, "HTTP 503");
  assert.deepEqual(state.data, [1]);
});

test("an unknown query name is an error that names it", () => {
  const cache = new QueryCache();
  assert.throws(() => cache.subscribe("nope", () => {}), /unknown query "nope"/);
});
