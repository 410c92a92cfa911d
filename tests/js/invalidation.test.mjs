import assert from "node:assert/strict";
import { test } from "node:test";

import { INVALIDATION_MAP, queriesFor } from "../../gateway/static/lib/invalidation.js";

test("each event type invalidates the queries the issue names", () => {
  assert.deepEqual(queriesFor("INVENTORY_CHANGE"), ["products", "inventory"]);
  assert.deepEqual(queriesFor("ORDER_RECEIVED"), ["orders"]);
  assert.deepEqual(queriesFor("PRICE_CHANGE"), ["listings", "pricing"]);
  assert.deepEqual(queriesFor("LISTING_UPDATE"), ["listings"]);
  assert.equal(Object.keys(INVALIDATION_MAP).length, 4);
});

test("an unknown type invalidates nothing", () => {
  assert.deepEqual(queriesFor("SOMETHING_ELSE"), []);
});

test("the map cannot be changed by a page", () => {
  assert.throws(() => { INVALIDATION_MAP.ORDER_RECEIVED.push("products"); }, TypeError);
});
