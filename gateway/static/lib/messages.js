// What a stream message means to a person: the toast text and where a click leads.
// The pipeline's events (tasks/) put the database id of their subject in payload.id; a
// PRICE_CHANGE of a supplier's price (kind "purchase") is about a product, not a listing.

const NAMES = Object.freeze({
  INVENTORY_CHANGE: { many: "inventory changes", list: "/#products" },
  ORDER_RECEIVED: { many: "orders received", list: "/#orders" },
  PRICE_CHANGE: { many: "price changes", list: "/#listings" },
  LISTING_UPDATE: { many: "listing updates", list: "/#listings" },
});

/** The page an event is about: { page: "products" | "listings" | "orders", noun, id }, or null. */
export function subjectOf(event) {
  const payload = event?.payload ?? {};
  const data = payload.data ?? {};
  switch (event?.type) {
    case "INVENTORY_CHANGE":
      return { page: "products", noun: "product", id: data.productId ?? payload.id };
    case "ORDER_RECEIVED": // data.orderId is the marketplace's order number, not ours
      return { page: "orders", noun: "order", id: payload.id };
    case "PRICE_CHANGE":
      if (data.listingId == null && (data.kind === "purchase" || data.productId != null)) {
        return { page: "products", noun: "product", id: data.productId ?? payload.id };
      }
      return { page: "listings", noun: "listing", id: data.listingId ?? payload.id };
    case "LISTING_UPDATE":
      return { page: "listings", noun: "listing", id: data.listingId ?? payload.id };
    default:
      return null;
  }
}

/** The detail page of one event, or null when it has none. */
export function detailHref(event) {
  const subject = subjectOf(event);
  // POST /api/realtime/test announces a listing that does not exist.
  if (!subject || subject.id == null || subject.id === "" || event.payload?.data?.test === true) return null;
  return `/${subject.page}/${encodeURIComponent(String(subject.id))}`;
}

function oneText(event) {
  const subject = subjectOf(event);
  const action = event.payload?.action ?? "changed";
  switch (event.type) {
    case "INVENTORY_CHANGE":
      return `Inventory change: product ${subject.id} ${action}`;
    case "ORDER_RECEIVED":
      return `Order ${subject.id} ${action === "created" ? "received" : action}`
        + (event.payload?.data?.oversold === true ? " (OVERSOLD: the item had already sold elsewhere)" : "");
    case "PRICE_CHANGE":
      return `Price change: ${subject.noun} ${subject.id} ${action}`;
    case "LISTING_UPDATE":
      return `Listing ${subject.id} ${action}`;
    default:
      return `${event.type}: ${event.payload?.id} ${action}`;
  }
}

/** { text, href } for a stream message `{type, count, events, truncated?}`. */
export function describeMessage(message) {
  const names = NAMES[message.type] ?? { many: `${message.type} events`, list: "/" };
  const events = message.events ?? [];
  const count = message.count ?? events.length;
  if (count === 1 && events.length === 1) {
    return { text: oneText(events[0]), href: detailHref(events[0]) ?? names.list };
  }
  return { text: `${count} ${names.many}`, href: names.list };
}
