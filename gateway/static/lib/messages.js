// What a stream message means to a person: the toast text and where a click leads.

const NAMES = Object.freeze({
  INVENTORY_CHANGE: { one: "Inventory change", many: "inventory changes", list: "/#products" },
  ORDER_RECEIVED: { one: "New order", many: "new orders", list: "/#orders" },
  PRICE_CHANGE: { one: "Price change", many: "price changes", list: "/#listings" },
  LISTING_UPDATE: { one: "Listing update", many: "listing updates", list: "/#listings" },
});

/** The detail page of one event, or null when it has none (a deletion, an unknown type). */
export function detailHref(event) {
  const payload = event?.payload ?? {};
  const data = payload.data ?? {};
  if (payload.action === "deleted") return null;
  const page = {
    INVENTORY_CHANGE: ["products", data.productId ?? payload.id],
    ORDER_RECEIVED: ["orders", data.orderId ?? payload.id],
    PRICE_CHANGE: ["listings", data.listingId ?? payload.id],
    LISTING_UPDATE: ["listings", data.listingId ?? payload.id],
  }[event?.type];
  if (!page || page[1] === undefined || page[1] === null || page[1] === "") return null;
  return `/${page[0]}/${encodeURIComponent(String(page[1]))}`;
}

/** { text, href } for a batch message `{type, count, events, truncated?}`. */
export function describeMessage(message) {
  const names = NAMES[message.type] ?? { one: message.type, many: `${message.type} events`, list: "/" };
  const events = message.events ?? [];
  const count = message.count ?? events.length;
  if (count === 1 && events.length === 1) {
    const event = events[0];
    const payload = event.payload ?? {};
    return {
      text: `${names.one}: ${payload.id} ${payload.action ?? ""}`.trim(),
      href: detailHref(event) ?? names.list,
    };
  }
  return { text: `${count} ${names.many}`, href: names.list };
}
