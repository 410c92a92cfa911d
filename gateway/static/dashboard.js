// The dashboard page: three tables kept fresh by the event stream, toasts, and a live panel
// of event rates and connections from /api/realtime/stats.

import { RateTracker } from "./lib/rates.js";
import { EVENT_TYPES } from "./lib/invalidation.js";
import { QueryCache } from "./stream-client.js";
import { api, link, row, startSession, Toasts, when } from "./ui.js";

const STATS_EVERY_MS = 2000;
const COLOURS = { INVENTORY_CHANGE: "#2b7bb9", ORDER_RECEIVED: "#1a9850", PRICE_CHANGE: "#d9822b", LISTING_UPDATE: "#8e44ad" };

const cache = new QueryCache({ debounceMs: 250 });
for (const name of ["products", "inventory", "listings", "pricing", "orders"]) {
  cache.define(name, () => api(`/api/${name}?limit=100`));
}

const renderers = {
  products: (p) => row([link(`/products/${p.id}`, String(p.id)), p.title, p.source, availability(p), when(p.lastCheckedAt)]),
  listings: (l) => row([link(`/listings/${l.id}`, String(l.id)), l.sku, l.marketplace,
    l.price === null ? "–" : `${l.price} ${l.currency}`, l.status]),
  orders: (o) => row([link(`/orders/${o.id}`, String(o.id)), o.marketplace, o.buyerName || "–",
    `${o.total} ${o.currency}`, orderStatus(o), when(o.orderedAt)]),
};

/** An oversold order (its item had already sold elsewhere) is marked for a person to act on. */
function orderStatus(o) {
  if (!o.oversold) return o.status;
  const span = document.createElement("span");
  span.append(`${o.status} `);
  const badge = document.createElement("span");
  badge.className = "badge bad";
  badge.textContent = "Oversold";
  badge.title = "the item had already sold on another marketplace";
  span.append(badge);
  return span;
}

function availability(p) {
  const span = document.createElement("span");
  span.className = p.isAvailable ? "badge ok" : "badge bad";
  span.textContent = p.isAvailable ? "Available" : "Unavailable";
  if (p.status !== "ACTIVE") span.textContent += ` (${p.status.toLowerCase().replaceAll("_", " ")})`;
  return span;
}

/** Set a live region's text only when it changes, so a screen reader is not told the same thing twice. */
function say(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function bindTable(name) {
  const table = /** @type {HTMLTableElement} */ (document.querySelector(`table[data-query="${name}"]`));
  const body = table.tBodies[0];
  const note = table.parentElement.querySelector(".table-note");
  let previous = new Map();
  cache.subscribe(name, (state) => {
    table.setAttribute("aria-busy", String(state.status === "loading"));
    if (state.error) say(note, `Could not refresh: ${state.error.message}`);
    if (!state.data) return;
    const fresh = new Map();
    const rows = state.data.items.map((item) => {
      const tr = renderers[name](item);
      tr.dataset.id = item.id;
      const signature = JSON.stringify(item);
      fresh.set(String(item.id), signature);
      if (previous.size && previous.get(String(item.id)) !== signature) tr.classList.add("changed");
      return tr;
    });
    previous = fresh;
    body.replaceChildren(...rows);
    const shown = state.data.items.length;
    const total = state.data.total;
    if (!state.error) {
      say(note, total === 0 ? `No ${name} yet.` : shown < total ? `Showing ${shown} of ${total}.` : `${total} in all.`);
    }
  });
}

function startStats() {
  const tracker = new RateTracker({ keep: 30 });
  const chart = document.getElementById("rate-chart");
  const ratesBody = document.getElementById("rates-body");
  const error = document.getElementById("stats-error");
  const poll = async () => {
    try {
      const stats = await api("/api/realtime/stats?days=1");
      const rates = tracker.push(stats, Date.now()) ?? {};
      error.hidden = true;
      document.getElementById("conn-active").textContent = stats.connections.active;
      document.getElementById("conn-peak").textContent = stats.connections.peak;
      document.getElementById("conn-total").textContent = stats.connections.total;
      const p95 = stats.latencyMs?.p95;
      document.getElementById("latency-p95").textContent = p95 === null || p95 === undefined ? "–" : `≤ ${p95} ms`;
      ratesBody.replaceChildren(...EVENT_TYPES.map((type) => {
        const key = document.createElement("span");
        key.className = "key";
        key.style.background = COLOURS[type];
        const name = document.createElement("span");
        name.append(key, type);
        const r = rates[type] ?? { published: 0, delivered: 0 };
        return row([name, r.published.toFixed(1), r.delivered.toFixed(1), String(stats.types?.[type]?.publishedToday ?? 0)]);
      }));
      drawChart(chart, tracker);
    } catch (e) {
      error.hidden = false;
      error.textContent = `Statistics unavailable: ${e.message}`;
    }
  };
  poll();
  setInterval(poll, STATS_EVERY_MS);
}

/** The count of orders no operator has acknowledged, fetched again whenever the orders change. */
function bindUnacknowledged() {
  const target = document.getElementById("unacknowledged-count");
  cache.subscribe("orders", (state) => {
    if (!state.data) return;
    api("/api/orders/unacknowledged").then((body) => say(target, String(body.count)), (error) => say(target, `? (${error.message})`));
  });
}

function drawChart(svg, tracker) {
  const width = 300;
  const height = 90;
  const series = EVENT_TYPES.map((type) => [type, tracker.series(type, "delivered")]);
  const top = Math.max(1, ...series.flatMap(([, values]) => values));
  const ns = "http://www.w3.org/2000/svg";
  const lines = series.map(([type, values]) => {
    const step = width / Math.max(1, tracker.keep - 1);
    const offset = (tracker.keep - values.length) * step;
    const points = values.map((v, i) => `${(offset + i * step).toFixed(1)},${(height - 4 - (v / top) * (height - 8)).toFixed(1)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("stroke", COLOURS[type]);
    line.setAttribute("data-type", type);
    return line;
  });
  document.getElementById("chart-max").textContent = top.toFixed(1);
  svg.replaceChildren(...lines);
}

startSession((connection) => {
  connection.attach(cache);
  const toasts = new Toasts(document.getElementById("toasts"));
  connection.subscribe("*", (message) => toasts.show(message));
  for (const name of Object.keys(renderers)) bindTable(name);
  bindUnacknowledged();
  startStats();
});
