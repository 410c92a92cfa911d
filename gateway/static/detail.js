// A detail page (product, listing or order): its fields, what belongs to it, refreshed live.

import { QueryCache } from "./stream-client.js";
import { api, apiKey, link, row, startSession, Toasts, when } from "./ui.js";

const article = document.getElementById("detail");
const { kind, id } = article.dataset;
const note = article.querySelector(".table-note");

// The detail query carries the name of its list, so the invalidation map applies unchanged.
const cache = new QueryCache({ debounceMs: 250 });
cache.define(kind, () => api(`/api/${kind}/${encodeURIComponent(id)}`));

const FIELDS = {
  products: [["Title", "title"], ["Source", "source"], ["Source item", "sourceItemId"], ["Available", "isAvailable", (v) => (v ? "Yes" : "No")],
    ["Status", "status"], ["Purchase price (JPY)", "purchasePriceJpy"], ["Weight (g)", "weightGrams"],
    ["Last checked", "lastCheckedAt", when], ["Updated", "updatedAt", when]],
  listings: [["Product", "productId", (v) => link(`/products/${v}`, String(v))], ["Marketplace", "marketplace"],
    ["SKU", "sku"], ["Price", "price"], ["Currency", "currency"], ["Shipping", "shippingCost"], ["Status", "status"],
    ["Error", "errorMessage"], ["Listed", "listedAt", when], ["Updated", "updatedAt", when]],
  orders: [["Marketplace", "marketplace"], ["Order number", "marketplaceOrderId"], ["Buyer", "buyerName"],
    ["Subtotal", "subtotal"], ["Shipping", "shippingCost"], ["Tax", "tax"], ["Total", "total"],
    ["Currency", "currency"], ["Status", "status"], ["Ordered", "orderedAt", when],
    ["Acknowledged", "acknowledgedAt", when]],
};

const RELATED = {
  products: ["Listings", "listings", ["ID", "Marketplace", "SKU", "Price", "Status"],
    (l) => [link(`/listings/${l.id}`, String(l.id)), l.marketplace, l.sku, l.price ?? "–", l.status]],
  listings: ["Price history", "priceHistory", ["When", "Old", "New", "Reason"],
    (h) => [when(h.createdAt), h.oldPrice ?? "–", h.newPrice, h.reason]],
  orders: ["Lines", "lines", ["SKU", "Title", "Quantity", "Unit price"],
    (l) => [l.listingId ? link(`/listings/${l.listingId}`, l.sku || String(l.listingId)) : l.sku, l.title,
      String(l.quantity), l.unitPrice ?? "–"]],
};

function render(item) {
  const dl = article.querySelector(".fields");
  dl.replaceChildren(...FIELDS[kind].flatMap(([label, key, format]) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    const value = item[key];
    dd.append(format && value !== null && value !== undefined ? format(value) : String(value ?? "–"));
    return [dt, dd];
  }));
  const [caption, key, headings, cells] = RELATED[kind];
  const table = document.createElement("table");
  table.createCaption().textContent = caption;
  const head = table.createTHead().insertRow();
  for (const h of headings) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  body.append(...(item[key] ?? []).map((x) => row(cells(x))));
  article.querySelector(".related").replaceChildren(table);
  if (kind === "orders") renderAck(item);
}

/** The acknowledge button: tells the notifier an operator has seen this order (no escalation). */
function renderAck(item) {
  let button = /** @type {HTMLButtonElement | null} */ (article.querySelector("button.ack"));
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "ack";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const response = await fetch(`/api/orders/${encodeURIComponent(id)}/ack`, {
        method: "POST", headers: { "X-API-Key": apiKey.get() ?? "", Accept: "application/json" } });
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        button.disabled = false;
        note.textContent = body?.error ?? `HTTP ${response.status}`;
        return;
      }
      cache.refetch(kind);
    });
    article.querySelector("h1").after(button);
  }
  const done = Boolean(item.acknowledgedAt);
  button.disabled = done;
  button.textContent = done ? "Acknowledged" : "Acknowledge order";
}

startSession((connection) => {
  connection.attach(cache);
  const toasts = new Toasts(document.getElementById("toasts"));
  connection.subscribe("*", (message) => toasts.show(message));
  cache.subscribe(kind, (state) => {
    if (state.data) {
      render(state.data);
      note.textContent = `Updated ${new Date(state.updatedAt).toLocaleTimeString()}`;
    }
    if (state.error) note.textContent = state.error.message;
  });
});
