// One event stream for all the dashboard tabs of a browser.
//
// Browsers open at most about six HTTP/1.1 connections per origin, across all tabs: with one
// stream per tab, the seventh tab would not even load. So the tabs elect a leader with the Web
// Locks API; only the leader holds a RealtimeConnection, and it relays every message, status
// and reset to the other tabs on a BroadcastChannel. When the leader's tab closes its lock is
// released, the next tab in line takes over and resumes from the last id the tabs had seen.
// Without Web Locks or BroadcastChannel each tab simply keeps its own stream.

import { SeenIds, withoutDuplicates } from "./lib/dedupe.js";
import { Listeners } from "./lib/listeners.js";

const CHANNEL = "rakuda-realtime";

export class TabSharedConnection extends Listeners {
  /**
   * @param {import("./stream-client.js").RealtimeConnection} connection the stream the leader tab holds
   * @param {{locks?: LockManager, BroadcastChannel?: typeof globalThis.BroadcastChannel, name?: string}} [options]
   */
  constructor(connection, {
    locks = globalThis.navigator?.locks,
    BroadcastChannel = globalThis.BroadcastChannel,
    name = CHANNEL,
  } = {}) {
    super();
    /** @type {import("./stream-client.js").RealtimeConnection} */
    this.connection = connection;
    this.locks = locks;
    this.name = name;
    this.shared = Boolean(locks && BroadcastChannel);
    this.channel = this.shared ? new BroadcastChannel(name) : null;
    this.role = "idle"; // "idle" | "waiting" | "leader"
    this.seen = new SeenIds();
    connection.seen = this.seen; // a new leader drops what the tabs already showed
    this.state = connection.status;
    this.lastEvent = null;

    connection.subscribe("*", (message) => {
      if (this.role !== "leader" && this.shared) return;
      this._post({ kind: "message", message, lastEventId: connection.lastEventId });
      this._deliver(message);
    });
    connection.onStatus((status) => {
      if (this.role !== "leader" && this.shared) return;
      this._post({ kind: "status", status, lastEventId: connection.lastEventId });
      this._setStatus(status);
      if (status.authFailed) this._resign();
    });
    connection.onReset((reason) => {
      if (this.role !== "leader" && this.shared) return;
      this._post({ kind: "reset", reason });
      this._emitReset(reason);
    });
    if (this.channel) this.channel.onmessage = (event) => this._fromChannel(event.data);
  }

  get isConnected() {
    return this.state.phase === "connected";
  }

  get status() {
    return { ...this.state };
  }

  get isLeader() {
    return this.role === "leader";
  }

  start() {
    if (!this.shared) {
      this.connection.start();
      return;
    }
    if (this.role === "leader") {
      this.connection.start();
      return;
    }
    if (this.role === "waiting") return;
    this.role = "waiting";
    this._setStatus({ ...this.state, phase: "connecting", reason: null, authFailed: false });
    this.abort = new AbortController();
    this.locks.request(this.name, { signal: this.abort.signal }, () => new Promise((release) => {
      this.release = release;
      this._lead();
    })).catch((error) => {
      if (error?.name !== "AbortError") console.error("rakuda realtime: tab election failed", error);
    });
    this._post({ kind: "hello" }); // the leader, if any, answers with its status
  }

  stop(reason = "stopped") {
    if (!this.shared || this.role === "leader") this.connection.stop(reason);
    this.abort?.abort();
    this._resign();
    this.role = "idle";
    if (this.shared) this._setStatus({ ...this.state, phase: "disconnected", reason });
  }

  _lead() {
    this.role = "leader";
    if (this.lastEventId) this.connection.lastEventId = this.lastEventId;
    // taking over from another tab is a reconnect: if it cannot resume, everything is refetched
    if (this.sawConnected) this.connection.everConnected = true;
    this.connection.start();
  }

  _resign() {
    if (this.role !== "leader") return;
    this.role = "idle";
    const release = this.release;
    this.release = null;
    release?.();
  }

  _fromChannel(data) {
    if (this.role === "leader") {
      if (data.kind === "hello") {
        this._post({ kind: "status", status: this.connection.status, lastEventId: this.connection.lastEventId });
      }
      return;
    }
    if (this.role === "idle") return;
    if (data.lastEventId) this.lastEventId = data.lastEventId;
    if (data.kind === "message") {
      const fresh = withoutDuplicates(data.message, this.seen);
      if (fresh) this._deliver(fresh);
    } else if (data.kind === "status") {
      if (data.status.phase === "connected") this.sawConnected = true;
      this._setStatus(data.status);
    } else if (data.kind === "reset") {
      this._emitReset(data.reason);
    }
  }

  _deliver(message) {
    this.lastEvent = message;
    this._handOut(message);
  }

  _setStatus(status) {
    this.state = { ...status };
    this._emitStatus();
  }

  _post(data) {
    this.channel?.postMessage(data);
  }
}
