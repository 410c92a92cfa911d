import assert from "node:assert/strict";
import { test } from "node:test";

import { QueryCache, RealtimeConnection } from "../../gateway/static/stream-client.js";
import { FakeTimers, settle } from "./fake-timers.mjs";
import { FakeEventSource } from "./fake-event-source.mjs";

function setup({ tokenStatus = () => 200 } = {}) {
  FakeEventSource.all = [];
  const timers = new FakeTimers();
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, init });
    const status = tokenStatus(requests.length);
    if (status === "down") throw new TypeError("Failed to fetch");
    const body = status === 200 ? { token: "t", expiresIn: 900 } : { error: "invalid API key", status };
    return { status, ok: status === 200, json: async () => body };
  };
  const rt = new RealtimeConnection({
    getApiKey: () => "k", fetch, EventSource: FakeEventSource, timers, now: timers.now, random: () => 1,
    backoff: { baseMs: 1000, maxMs: 8000 },
  });
  const statuses = [];
  rt.onStatus((s) => statuses.push(s));
  const latest = () => FakeEventSource.all.at(-1);
  return { rt, timers, requests, statuses, latest };
}

const batch = (type, ...ids) => ({ type, count: ids.length, events: ids.map((id) => ({ id, type, payload: { id: `x${id}`, action: "updated" } })) });

test("connects with a token fetched with the key header, never with the key in the URL", async () => {
  const { rt, requests, latest } = setup();
  rt.start();
  await settle();
  assert.equal(requests[0].url, "/api/realtime/token");
  assert.equal(requests[0].init.headers["X-API-Key"], "k");
  assert.equal(latest().url, "/api/realtime/events?channels=inventory%2Corders%2Cpricing%2Clistings");
  assert.equal(rt.isConnected, false);
  latest().emit("connected", { heartbeatInterval: 1000, resumed: false });
  assert.equal(rt.isConnected, true);
});

test("delivers each message once to its subscribers, dropping repeats by event id", async () => {
  const { rt, latest } = setup();
  const got = [];
  rt.subscribe("INVENTORY_CHANGE", (m) => got.push(m));
  rt.start();
  await settle();
  latest().emit("connected", { heartbeatInterval: 1000 });
  latest().emit("INVENTORY_CHANGE", batch("INVENTORY_CHANGE", "1-0", "2-0"), "2-0");
  latest().emit("INVENTORY_CHANGE", batch("INVENTORY_CHANGE", "2-0", "3-0"), "3-0");
  latest().emit("INVENTORY_CHANGE", batch("INVENTORY_CHANGE", "3-0"), "3-0");
  latest().emit("ORDER_RECEIVED", batch("ORDER_RECEIVED", "4-0"), "4-0");
  assert.deepEqual(got.map((m) => m.events.map((e) => e.id)), [["1-0", "2-0"], ["3-0"]]);
  assert.equal(rt.lastEvent.type, "ORDER_RECEIVED");
});

test("after a drop it reconnects with backoff and resumes from the last id", async () => {
  const { rt, timers, latest, statuses } = setup();
  rt.start();
  await settle();
  latest().emit("connected", { heartbeatInterval: 1000 });
  latest().emit("heartbeat", { time: 1 }, "5-0");
  latest().emit("INVENTORY_CHANGE", batch("INVENTORY_CHANGE", "6-0"), "6-0");
  const first = latest();
  first.fail();
  assert.equal(first.closed, true);
  assert.equal(statuses.at(-1).phase, "reconnecting");
  assert.equal(statuses.at(-1).retryAt, timers.now() + 1000);
  await timers.advance(999);
  assert.equal(latest(), first);
  await timers.advance(1);
  assert.notEqual(latest(), first);
  assert.match(latest().url, /lastEventId=6-0$/);
});

test("the backoff grows while the gateway stays down, and resets once connected", async () => {
  const { rt, timers, statuses, latest } = setup({ tokenStatus: (n) => (n >= 2 && n <= 4 ? "down" : 200) });
  rt.start();
  await settle();
  latest().fail(); // attempt 1 in 1 s
  const delays = [];
  for (let i = 0; i < 3; i++) {
    const s = statuses.at(-1);
    delays.push(s.retryAt - timers.now());
    await timers.advance(s.retryAt - timers.now());
  }
  assert.deepEqual(delays, [1000, 2000, 4000]);
  assert.match(statuses.at(-1).reason, /gateway unreachable/);
  await timers.advance(statuses.at(-1).retryAt - timers.now()); // the gateway is back
  assert.equal(FakeEventSource.all.length, 2);
  latest().emit("connected", { heartbeatInterval: 1000 });
  assert.equal(rt.status.attempt, 0);
});

test("no heartbeat for about two intervals closes the stream and reconnects", async () => {
  const { rt, timers, latest, statuses } = setup();
  rt.start();
  await settle();
  const quiet = latest();
  quiet.emit("connected", { heartbeatInterval: 1000 });
  await timers.advance(1500);
  quiet.emit("heartbeat", { time: 1 });
  await timers.advance(2000);
  assert.equal(rt.isConnected, true, "a heartbeat within two intervals keeps it");
  await timers.advance(1000);
  assert.equal(quiet.closed, true);
  assert.equal(statuses.at(-1).phase, "reconnecting");
  assert.match(statuses.at(-1).reason, /no heartbeat for 3 s/);
});

test("a rejected key stops reconnecting and says authentication failed", async () => {
  const { rt, timers, statuses, requests } = setup({ tokenStatus: () => 401 });
  rt.start();
  await settle();
  assert.equal(statuses.at(-1).phase, "disconnected");
  assert.equal(statuses.at(-1).authFailed, true);
  assert.match(statuses.at(-1).reason, /authentication failed \(invalid API key\)/);
  await timers.advance(60000);
  assert.equal(requests.length, 1);
});

test("every reconnect fetches a fresh token, so an expired one is replaced", async () => {
  const { rt, timers, requests, latest } = setup();
  rt.start();
  await settle();
  latest().emit("connected", { heartbeatInterval: 1000 });
  latest().fail(); // e.g. the stream answered 401 token expired
  await timers.advance(1000);
  assert.equal(requests.length, 2);
});

test("messages invalidate their queries; a reset or a reconnect without resume invalidates all", async () => {
  const { rt, timers, latest } = setup();
  const cache = new QueryCache({ debounceMs: 0, timers });
  const fetched = { products: 0, inventory: 0, orders: 0, listings: 0, pricing: 0 };
  for (const name of Object.keys(fetched)) {
    cache.define(name, async () => ++fetched[name]);
    cache.subscribe(name, () => {});
  }
  rt.attach(cache);
  rt.start();
  await settle();
  latest().emit("connected", { heartbeatInterval: 1000 });
  latest().emit("INVENTORY_CHANGE", batch("INVENTORY_CHANGE", "1-0"), "1-0");
  await timers.advance(0);
  assert.deepEqual(fetched, { products: 2, inventory: 2, orders: 1, listings: 1, pricing: 1 });
  latest().emit("reset", { reason: "unknown id" });
  await timers.advance(0);
  assert.deepEqual(fetched, { products: 3, inventory: 3, orders: 2, listings: 2, pricing: 2 });
  latest().fail();
  await timers.advance(1000);
  latest().emit("connected", { heartbeatInterval: 1000, resumed: true });
  await timers.advance(0);
  assert.equal(fetched.orders, 2, "a resumed stream needs no refetch");
  latest().fail();
  await timers.advance(1000);
  latest().emit("connected", { heartbeatInterval: 1000, resumed: false });
  await timers.advance(0);
  assert.equal(fetched.orders, 3);
});

test("stop closes the stream and cancels the reconnect", async () => {
  const { rt, timers, latest, requests } = setup();
  rt.start();
  await settle();
  latest().fail();
  rt.stop();
  await timers.advance(60000);
  assert.equal(requests.length, 1);
  assert.equal(rt.status.phase, "disconnected");
});

test("a stream that never answers is given up after the connect timeout", async () => {
  const { rt, timers, latest, statuses } = setup();
  rt.start();
  await settle();
  const hanging = latest();
  await timers.advance(14999);
  assert.equal(hanging.closed, false);
  await timers.advance(1);
  assert.equal(hanging.closed, true);
  assert.match(statuses.at(-1).reason, /no answer from the stream within 15 s/);
});

test("a token request that hangs is aborted after the connect timeout", async () => {
  FakeEventSource.all = [];
  const timers = new FakeTimers();
  const fetch = (url, init) => new Promise((_, reject) => {
    init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
  });
  const rt = new RealtimeConnection({ getApiKey: () => "k", fetch, EventSource: FakeEventSource, timers,
    now: timers.now, random: () => 1, connectTimeoutMs: 5000 });
  rt.start();
  await timers.advance(5000);
  assert.equal(rt.status.phase, "reconnecting");
  assert.match(rt.status.reason, /gateway unreachable: no answer within 5 s/);
});

test("starting again while a token request is on its way opens one stream, not two", async () => {
  FakeEventSource.all = [];
  const timers = new FakeTimers();
  const answers = [];
  const fetch = () => new Promise((resolve) => answers.push(resolve));
  const rt = new RealtimeConnection({ getApiKey: () => "k", fetch, EventSource: FakeEventSource, timers, now: timers.now });
  rt.start();
  rt.stop("key forgotten");
  rt.start();
  const ok = { status: 200, ok: true, json: async () => ({ token: "t", expiresIn: 900 }) };
  answers.forEach((resolve) => resolve(ok));
  await settle();
  assert.equal(FakeEventSource.all.length, 1);
});
