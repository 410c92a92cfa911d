// The browser's side of the event stream, as a plain ES module:
//
//   import { RealtimeConnection, TabSharedConnection, QueryCache } from "/static/stream-client.js";
//   const rt = new TabSharedConnection(new RealtimeConnection({ getApiKey: () => key }));
//   rt.subscribe("INVENTORY_CHANGE", (message) => ...);  rt.attach(cache);  rt.start();
//
// Before each (re)connect it trades the API key for a short-lived token (POST
// /api/realtime/token sets it as an HttpOnly cookie, so neither key nor token goes in a URL),
// then opens an EventSource. It reconnects itself, with exponential backoff and jitter, when the
// stream fails or when no heartbeat came for about two intervals, and resumes from the last id
// it saw (`lastEventId`), dropping events it already has. `reset` invalidates everything.

import { backoffDelay } from "./lib/backoff.js";
import { SeenIds, withoutDuplicates } from "./lib/dedupe.js";
import { EVENT_TYPES } from "./lib/invalidation.js";
import { Listeners } from "./lib/listeners.js";
import { heartbeatOverdue } from "./lib/status.js";

export { QueryCache } from "./lib/query-cache.js";
export { INVALIDATION_MAP, queriesFor } from "./lib/invalidation.js";
export { describeStatus } from "./lib/status.js";
export { describeMessage, detailHref } from "./lib/messages.js";
export { TabSharedConnection } from "./shared-tabs.js";

export const ALL_CHANNELS = Object.freeze(["inventory", "orders", "pricing", "listings"]);

export class AuthError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "AuthError";
    this.status = status;
  }
}

/**
 * @typedef {object} ConnectionOptions
 * @property {string} [baseUrl] where the gateway is ("" for the page's own origin)
 * @property {readonly string[]} [channels] the channels to stream
 * @property {() => string} getApiKey the API key, asked before each (re)connect
 * @property {{baseMs?: number, factor?: number, maxMs?: number, jitter?: number}} [backoff] reconnect delays (lib/backoff.js)
 * @property {number} [connectTimeoutMs] give up on a connect attempt after this long
 * @property {typeof globalThis.fetch} [fetch]
 * @property {typeof globalThis.EventSource} [EventSource]
 * @property {{setTimeout: typeof setTimeout, clearTimeout: typeof clearTimeout}} [timers]
 * @property {() => number} [now] the clock, in ms
 * @property {() => number} [random] a number in [0, 1), for jitter
 */

export class RealtimeConnection extends Listeners {
  /** @param {ConnectionOptions} options */
  constructor({
    baseUrl = "",
    channels = ALL_CHANNELS,
    getApiKey,
    backoff = {},
    connectTimeoutMs = 15000,
    fetch = globalThis.fetch?.bind(globalThis),
    EventSource = globalThis.EventSource,
    timers = globalThis,
    now = () => Date.now(),
    random = Math.random,
  } = /** @type {ConnectionOptions} */ ({})) {
    if (typeof getApiKey !== "function") throw new TypeError("getApiKey must be a function returning the API key");
    super();
    this.baseUrl = baseUrl;
    this.channels = channels;
    this.getApiKey = getApiKey;
    this.backoff = backoff;
    this.connectTimeoutMs = connectTimeoutMs;
    this.fetch = fetch;
    this.EventSource = EventSource;
    this.timers = timers;
    this.now = now;
    this.random = random;
    this.seen = new SeenIds();
    this.lastEventId = null;
    this.lastEvent = null;
    this.source = null;
    this.timer = null;
    this.watchdog = null;
    this.everConnected = false;
    this.run = 0; // bumped by start/stop, so callbacks of an earlier run do nothing
    this.stopped = true;
    this.state = { phase: "disconnected", connectedAt: null, lastHeartbeatAt: null, retryAt: null,
      attempt: 0, reason: "not started", authFailed: false, heartbeatInterval: null };
  }

  get isConnected() {
    return this.state.phase === "connected";
  }

  get status() {
    return { ...this.state };
  }

  start() {
    this._halt();
    this.stopped = false;
    this.state.attempt = 0;
    this._set({ phase: "connecting", reason: null, authFailed: false });
    this._connect(this.run);
  }

  stop(reason = "stopped") {
    this._halt();
    this._set({ phase: "disconnected", reason, retryAt: null });
  }

  /** End the current run: its stream, its timers, and any token request still on its way. */
  _halt() {
    this.run += 1;
    this.stopped = true;
    this._closeSource();
    this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  async _connect(run) {
    this.timer = null;
    if (run !== this.run) return;
    try {
      await this._fetchToken();
    } catch (error) {
      if (run !== this.run) return;
      if (error instanceof AuthError) {
        this._halt();
        this._set({ phase: "disconnected", reason: `authentication failed (${error.message})`, authFailed: true });
        return;
      }
      this._scheduleReconnect(`gateway unreachable: ${error.message}`);
      return;
    }
    if (run !== this.run) return;
    this._open();
  }

  async _fetchToken() {
    const key = this.getApiKey();
    if (!key) throw new AuthError("no API key entered", 401);
    let response;
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    const timer = this.timers.setTimeout(() => abort?.abort(), this.connectTimeoutMs);
    try {
      response = await this.fetch(`${this.baseUrl}/api/realtime/token`, {
        method: "POST", headers: { "X-API-Key": key }, credentials: "same-origin", signal: abort?.signal,
      });
    } catch (error) {
      throw new Error(abort?.signal.aborted ? `no answer within ${this.connectTimeoutMs / 1000} s` : error?.message || "network error");
    } finally {
      this.timers.clearTimeout(timer);
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 401 || response.status === 429) {
      throw new AuthError(body.error || `HTTP ${response.status}`, response.status);
    }
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  _open() {
    const params = new URLSearchParams({ channels: this.channels.join(",") });
    if (this.lastEventId) params.set("lastEventId", this.lastEventId);
    const source = new this.EventSource(`${this.baseUrl}/api/realtime/events?${params}`);
    this.source = source;
    const mine = (fn) => (event) => { if (this.source === source) fn(event); };
    source.addEventListener("connected", mine((e) => this._onConnected(e)));
    source.addEventListener("heartbeat", mine((e) => this._onHeartbeat(e)));
    source.addEventListener("reset", mine((e) => this._onReset(e)));
    for (const type of EVENT_TYPES) source.addEventListener(type, mine((e) => this._onMessage(e)));
    source.onerror = mine(() => {
      this._closeSource();
      const reason = this.state.phase === "connected" ? "the stream was closed" : "the stream could not be opened";
      this._scheduleReconnect(reason);
    });
    // A gateway that accepts the connection but never answers is as good as down.
    this.watchdog = this.timers.setTimeout(mine(() => {
      this._closeSource();
      this._scheduleReconnect(`no answer from the stream within ${this.connectTimeoutMs / 1000} s`);
    }), this.connectTimeoutMs);
  }

  _onConnected(e) {
    const info = parse(e.data) ?? {};
    const reconnect = this.everConnected;
    this.everConnected = true;
    this.lastMessageAt = this.now();
    this._remember(e);
    this._set({ phase: "connected", connectedAt: this.now(), lastHeartbeatAt: null, retryAt: null,
      attempt: 0, reason: null, heartbeatInterval: info.heartbeatInterval ?? 30000, resumed: !!info.resumed });
    this._armWatchdog();
    if (reconnect && !info.resumed) this._emitReset("reconnected without resuming");
  }

  _onHeartbeat(e) {
    this.lastMessageAt = this.now();
    this._remember(e);
    this._set({ lastHeartbeatAt: this.now() });
  }

  _onReset(e) {
    this.lastMessageAt = this.now();
    this._remember(e);
    this._emitReset((parse(e.data) ?? {}).reason ?? "reset by the gateway");
  }

  _onMessage(e) {
    this.lastMessageAt = this.now();
    const message = parse(e.data);
    this._remember(e);
    if (!message) return;
    const fresh = withoutDuplicates(message, this.seen);
    if (!fresh) return;
    this.lastEvent = fresh;
    this._handOut(fresh);
  }

  _remember(e) {
    if (e.lastEventId) this.lastEventId = e.lastEventId;
  }

  _armWatchdog() {
    this.timers.clearTimeout(this.watchdog);
    const interval = this.state.heartbeatInterval;
    const every = Math.max(250, Math.min(interval / 2, 5000));
    this.watchdog = this.timers.setTimeout(() => {
      if (this.state.phase !== "connected") return;
      if (heartbeatOverdue(this.lastMessageAt, this.now(), interval)) {
        const silent = Math.round((this.now() - this.lastMessageAt) / 1000);
        this._closeSource();
        this._scheduleReconnect(`no heartbeat for ${silent} s`);
      } else {
        this._armWatchdog();
      }
    }, every);
  }

  _closeSource() {
    this.timers.clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  _scheduleReconnect(reason) {
    if (this.stopped) return;
    const delay = backoffDelay(this.state.attempt, this.backoff, this.random);
    this._set({ phase: "reconnecting", retryAt: this.now() + delay, attempt: this.state.attempt + 1, reason });
    this.timers.clearTimeout(this.timer);
    const run = this.run;
    this.timer = this.timers.setTimeout(() => this._connect(run), delay);
  }

  _set(changes) {
    Object.assign(this.state, changes);
    this._emitStatus();
  }
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch (error) {
    console.error("rakuda realtime: a stream message is not JSON", data, error);
    return null;
  }
}
