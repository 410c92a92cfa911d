import assert from "node:assert/strict";
import { test } from "node:test";

import { describeMessage, detailHref } from "../../gateway/static/lib/messages.js";
import { RateTracker } from "../../gateway/static/lib/rates.js";
import { describeStatus, heartbeatOverdue } from "../../gateway/static/lib/status.js";

const one = (type, id, action = "updated", data) => ({ type, count: 1, events: [{ id: "1-0", type, payload: { id, action, data } }] });

test("one event: a toast named after it that leads to its detail page", () => {
  assert.deepEqual(describeMessage(one("INVENTORY_CHANGE", "P-1")), { text: "Inventory change: product P-1 updated", href: "/products/P-1" });
  assert.deepEqual(describeMessage(one("ORDER_RECEIVED", "O 7", "created")), { text: "Order O 7 received", href: "/orders/O%207" });
  assert.deepEqual(describeMessage(one("PRICE_CHANGE", "L-2")), { text: "Price change: listing L-2 updated", href: "/listings/L-2" });
  assert.deepEqual(describeMessage(one("LISTING_UPDATE", "L-3")), { text: "Listing L-3 updated", href: "/listings/L-3" });
});

test("a batch: one toast with its count, leading to the list", () => {
  const batch = { type: "INVENTORY_CHANGE", count: 12, events: [] };
  assert.deepEqual(describeMessage(batch), { text: "12 inventory changes", href: "/#products" });
  assert.deepEqual(describeMessage({ type: "ORDER_RECEIVED", count: 3, events: [] }), { text: "3 orders received", href: "/#orders" });
});

test("an event about a record of another thing is named after, and links to, that thing", () => {
  const event = { id: "1-0", type: "INVENTORY_CHANGE", payload: { id: "inv-9", action: "updated", data: { productId: 42 } } };
  assert.equal(detailHref(event), "/products/42");
  assert.equal(describeMessage({ type: "INVENTORY_CHANGE", count: 1, events: [event] }).text, "Inventory change: product 42 updated");
  const price = { id: "2-0", type: "PRICE_CHANGE", payload: { id: "ph-3", action: "created", data: { listingId: 7 } } };
  assert.equal(detailHref(price), "/listings/7");
});

test("the pipeline's events lead to the right page", () => {
  // tasks/inventory.py: a supplier's price changed (about a product)
  const purchase = one("PRICE_CHANGE", "5", "updated", { kind: "purchase", productId: 5, newPrice: 9800 });
  assert.deepEqual(describeMessage(purchase), { text: "Price change: product 5 updated", href: "/products/5" });
  // tasks/price_sync.py: a listing was repriced
  const listing = one("PRICE_CHANGE", "7", "updated", { kind: "listing", listingId: 7 });
  assert.deepEqual(describeMessage(listing), { text: "Price change: listing 7 updated", href: "/listings/7" });
  // tasks/webhook_processing.py: data.orderId is the marketplace's order number, payload.id ours
  const order = one("ORDER_RECEIVED", "12", "created", { orderId: "12-34567-89012" });
  assert.deepEqual(describeMessage(order), { text: "Order 12 received", href: "/orders/12" });
  const oversold = one("ORDER_RECEIVED", "13", "created", { orderId: "12-1", oversold: true });
  assert.equal(describeMessage(oversold).text, "Order 13 received (OVERSOLD: the item had already sold elsewhere)");
  // tasks/inventory.py: a listing ended ("deleted" on the marketplace) still has its page here
  const ended = one("LISTING_UPDATE", "3", "deleted", { status: "ENDED", productId: 5 });
  assert.deepEqual(describeMessage(ended), { text: "Listing 3 deleted", href: "/listings/3" });
});

test("the indicator's name starts with Connected, Reconnecting or Disconnected", () => {
  const t = (ms) => `t${ms}`;
  assert.equal(describeStatus({ phase: "connected", connectedAt: 5, lastHeartbeatAt: 9 }, 10, t).label,
    "Connected since t5, last heartbeat t9");
  const reconnecting = describeStatus({ phase: "reconnecting", retryAt: 4200, attempt: 2, reason: "the stream was closed" }, 1000, t);
  assert.equal(reconnecting.label, "Reconnecting in 4 s, attempt 2 (the stream was closed)");
  assert.equal(reconnecting.tone, "bad");
  assert.match(describeStatus({ phase: "disconnected", reason: "authentication failed (invalid API key)" }).label,
    /^Disconnected: authentication failed/);
  assert.match(describeStatus({ phase: "connecting" }).label, /^Disconnected/);
});

test("a heartbeat is overdue after about two intervals", () => {
  assert.equal(heartbeatOverdue(0, 2000, 1000), false);
  assert.equal(heartbeatOverdue(0, 2600, 1000), true);
  assert.equal(heartbeatOverdue(0, 60000, 30000), false);
  assert.equal(heartbeatOverdue(0, 61001, 30000), true);
});

test("rates per second come from the difference of two snapshots", () => {
  const rates = new RateTracker({ keep: 3 });
  assert.equal(rates.push({ types: { ORDER_RECEIVED: { publishedToday: 10, delivered: 20 } } }, 0), null);
  assert.deepEqual(rates.push({ types: { ORDER_RECEIVED: { publishedToday: 14, delivered: 28 } } }, 2000),
    { ORDER_RECEIVED: { published: 2, delivered: 4 } });
  // a counter that drops (midnight, restart) starts again from zero instead of going negative
  rates.push({ types: { ORDER_RECEIVED: { publishedToday: 3, delivered: 3 } } }, 3000);
  assert.deepEqual(rates.series("ORDER_RECEIVED", "published"), [2, 3]);
  for (let i = 4; i < 10; i++) rates.push({ types: {} }, i * 1000);
  assert.equal(rates.series("ORDER_RECEIVED").length, 3);
});

test("the gateway's test event leads to the list, not to a listing that does not exist", () => {
  const message = one("LISTING_UPDATE", "test-1700000000000", "updated", { test: true });
  assert.deepEqual(describeMessage(message), { text: "Listing test-1700000000000 updated", href: "/#listings" });
});
