import assert from "node:assert/strict";
import { test } from "node:test";

import { RealtimeConnection } from "../../gateway/static/stream-client.js";
import { TabSharedConnection } from "../../gateway/static/shared-tabs.js";
import { FakeTimers, settle } from "./fake-timers.mjs";
import { FakeEventSource } from "./fake-event-source.mjs";

// One "browser": a lock manager and broadcast channels shared by its tabs.
class FakeLocks {
  constructor() {
    this.holder = null;
    this.queue = [];
  }
  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      options.signal?.addEventListener("abort", () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new DOMException("aborted", "AbortError"));
        }
      });
      this.queue.push(entry);
      this._next();
    });
  }
  _next() {
    if (this.holder || this.queue.length === 0) return;
    const entry = (this.holder = this.queue.shift());
    Promise.resolve(entry.callback()).then((value) => {
      this.holder = null;
      entry.resolve(value);
      this._next();
    });
  }
}

function fakeBroadcast() {
  const open = new Set();
  return class {
    constructor() {
      open.add(this);
      this.onmessage = null;
    }
    postMessage(data) {
      const copy = structuredClone(data);
      for (const other of open) if (other !== this) queueMicrotask(() => other.onmessage?.({ data: copy }));
    }
    close() {
      open.delete(this);
    }
  };
}

function browser() {
  FakeEventSource.all = [];
  const timers = new FakeTimers();
  const locks = new FakeLocks();
  const BroadcastChannel = fakeBroadcast();
  const fetch = async () => ({ status: 200, ok: true, json: async () => ({ token: "t", expiresIn: 900 }) });
  const open = () => {
    const connection = new RealtimeConnection({ getApiKey: () => "k", fetch, EventSource: FakeEventSource, timers,
      now: timers.now, random: () => 1 });
    const tab = new TabSharedConnection(connection, { locks, BroadcastChannel });
    tab.got = [];
    tab.subscribe("*", (m) => tab.got.push(m.events.map((e) => e.id)));
    return tab;
  };
  return { open, locks, timers, streams: FakeEventSource.all };
}

const batch = (...ids) => ({ type: "ORDER_RECEIVED", count: ids.length,
  events: ids.map((id) => ({ id, type: "ORDER_RECEIVED", payload: { id, action: "created" } })) });

test("many tabs share one stream, and every tab gets every message and the status", async () => {
  const { open, streams } = browser();
  const tabs = [open(), open(), open()];
  tabs.forEach((t) => t.start());
  await settle();
  assert.equal(streams.length, 1);
  assert.deepEqual(tabs.map((t) => t.isLeader), [true, false, false]);
  streams[0].emit("connected", { heartbeatInterval: 1000 });
  streams[0].emit("ORDER_RECEIVED", batch("1-0"), "1-0");
  await settle();
  assert.deepEqual(tabs.map((t) => t.isConnected), [true, true, true]);
  assert.deepEqual(tabs.map((t) => t.got), [[["1-0"]], [["1-0"]], [["1-0"]]]);
});

test("a tab opened later learns the status from the leader", async () => {
  const { open, streams } = browser();
  const first = open();
  first.start();
  await settle();
  streams[0].emit("connected", { heartbeatInterval: 1000 });
  const late = open();
  late.start();
  await settle();
  assert.equal(late.isConnected, true);
});

test("when the leader's tab goes, the next one takes over and resumes without repeats", async () => {
  const { open, streams, timers } = browser();
  const [a, b] = [open(), open()];
  a.start();
  b.start();
  await settle();
  streams[0].emit("connected", { heartbeatInterval: 1000 });
  streams[0].emit("ORDER_RECEIVED", batch("1-0", "2-0"), "2-0");
  await settle();
  a.stop("tab closed");
  await timers.advance(0);
  assert.equal(b.isLeader, true);
  assert.equal(streams.length, 2);
  assert.match(streams[1].url, /lastEventId=2-0/);
  streams[1].emit("connected", { heartbeatInterval: 1000, resumed: true });
  streams[1].emit("ORDER_RECEIVED", batch("2-0", "3-0"), "3-0");
  assert.deepEqual(b.got, [["1-0", "2-0"], ["3-0"]]);
});

test("a reset reaches every tab", async () => {
  const { open, streams } = browser();
  const [a, b] = [open(), open()];
  const resets = [];
  a.onReset(() => resets.push("a"));
  b.onReset(() => resets.push("b"));
  a.start();
  b.start();
  await settle();
  streams[0].emit("connected", { heartbeatInterval: 1000 });
  streams[0].emit("reset", { reason: "history trimmed" });
  await settle();
  assert.deepEqual(resets.sort(), ["a", "b"]);
});

test("without Web Locks each tab keeps its own stream", async () => {
  FakeEventSource.all = [];
  const timers = new FakeTimers();
  const fetch = async () => ({ status: 200, ok: true, json: async () => ({ token: "t", expiresIn: 900 }) });
  const make = () => new TabSharedConnection(new RealtimeConnection({ getApiKey: () => "k", fetch,
    EventSource: FakeEventSource, timers, now: timers.now }), { locks: null });
  const [a, b] = [make(), make()];
  a.start();
  b.start();
  await settle();
  assert.equal(FakeEventSource.all.length, 2);
  FakeEventSource.all[0].emit("connected", { heartbeatInterval: 1000 });
  assert.equal(a.isConnected, true);
});
