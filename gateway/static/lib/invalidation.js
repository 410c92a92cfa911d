// Which cached queries an event type makes stale (the link between the stream and the query cache).

export const INVALIDATION_MAP = Object.freeze({
  INVENTORY_CHANGE: Object.freeze(["products", "inventory"]),
  ORDER_RECEIVED: Object.freeze(["orders"]),
  PRICE_CHANGE: Object.freeze(["listings", "pricing"]),
  LISTING_UPDATE: Object.freeze(["listings"]),
});

export const EVENT_TYPES = Object.freeze(Object.keys(INVALIDATION_MAP));

/** Query names to invalidate for an event type; [] for a type this client does not know. */
export function queriesFor(type) {
  return INVALIDATION_MAP[type] ?? [];
}
