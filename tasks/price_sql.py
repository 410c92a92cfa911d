"""A price sync batch's per-row work done by PostgreSQL: prices computed, then written, recorded and announced.

``plan_rows`` computes each listing's price with the formula of :mod:`tasks.pricing` in SQL
numeric: the cost in cents divided by ``1 - fees`` with ``div`` and rounded up to the cent by
comparing the remainder, so the rounding is exact, and whether it moved more than
``REPRICE_THRESHOLD``. ``record_rows`` writes a batch's prices, their history and their outbox
rows in one statement; PostgreSQL builds each row's event JSON in the form
``RealTimeEvent.to_json`` gives (compact, same key order, strings escaped by ``to_json``), with
``data.outboxId``, so Python only hands the stored bodies to the bus. ``json_build_object`` is
not used: its text puts spaces around ``:`` and ``,``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.constants import TYPE_CHANNELS
from shared.models import ListingStatus
from shared.realtime import EncodedEvent, RealTimeEventType
from tasks.outbox_rows import StoredEvent
from tasks.pricing import JOOM_SHIPPING_BASE, JOOM_SHIPPING_PER_GRAM, REPRICE_THRESHOLD, Fees

# The product is read per listing by its primary key (``LIMIT 1`` keeps the subquery a probe: as a
# join the planner would hash the whole products table for each batch).
PLAN = text("""
SELECT l.id, l.marketplace, l.marketplace_listing_id, l.listing_price, l.currency,
       f.divisor IS NOT NULL AS priced, c.price, s.shipping,
       (l.listing_price IS NULL OR l.listing_price = 0
        OR (l.listing_price > 0 AND abs(c.price - l.listing_price) > :threshold * l.listing_price)) AS moved
FROM listings AS l
CROSS JOIN LATERAL (SELECT purchase_price_jpy, weight_grams FROM products WHERE products.id = l.product_id
    LIMIT 1) AS p
LEFT JOIN unnest(CAST(:marketplaces AS varchar[]), CAST(:divisors AS numeric[]), CAST(:flat AS numeric[]))
    AS f(marketplace, divisor, flat) ON f.marketplace = l.marketplace
CROSS JOIN LATERAL (SELECT CASE WHEN l.marketplace = 'JOOM'
    THEN CAST(:joom_base AS numeric) + CAST(:per_gram AS numeric) * p.weight_grams ELSE f.flat END AS shipping) AS s
CROSS JOIN LATERAL (SELECT (p.purchase_price_jpy * CAST(:rate AS numeric) + s.shipping) * 100 AS cents) AS n
CROSS JOIN LATERAL (SELECT div(n.cents, f.divisor) AS whole) AS q
CROSS JOIN LATERAL (SELECT CAST((q.whole + CASE WHEN n.cents > q.whole * f.divisor THEN 1 ELSE 0 END) * 0.01
    AS numeric(12, 2)) AS price) AS c
WHERE l.id = ANY(CAST(:ids AS integer[])) AND l.status = :active
""")

# Rows whose price is already the new one (a concurrent run recorded it) are left out: they are
# neither written, nor recorded, nor announced. The locks are taken in id order. ``l.id = ANY(ids)``
# beside the joins lets the listings be found by their primary key rather than hashed whole.
RECORD = text("""
WITH v AS (
    SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:prices AS numeric[]), CAST(:shipping AS numeric[]))
        AS v(id, price, shipping)
), locked AS (
    SELECT l.id, l.listing_price AS old_price, v.price, v.shipping FROM listings AS l JOIN v ON v.id = l.id
    WHERE l.id = ANY(CAST(:ids AS integer[])) AND l.listing_price IS DISTINCT FROM v.price
    ORDER BY l.id FOR UPDATE OF l
), written AS (
    UPDATE listings AS l SET listing_price = locked.price, shipping_cost = locked.shipping, updated_at = :now
    FROM locked WHERE l.id = locked.id AND l.id = ANY(CAST(:ids AS integer[]))
    RETURNING l.id, locked.old_price, l.listing_price, l.currency, l.marketplace
), history AS (
    INSERT INTO price_history (listing_id, old_price, new_price, currency, reason, created_at)
    SELECT id, old_price, listing_price, currency, :reason, :now FROM written
), numbered AS (
    SELECT nextval(pg_get_serial_sequence('outbox_events', 'id')) AS outbox_id, w.*
    FROM (SELECT * FROM written ORDER BY id) AS w
)
INSERT INTO outbox_events (id, channel, event_json, created_at)
SELECT outbox_id, :channel,
    '{"type":' || to_json(CAST(:type AS text)) || ',"payload":{"id":"' || id || '","action":"updated","data":{'
    || '"oldPrice":' || coalesce(to_json(CAST(old_price AS text))::text, 'null')
    || ',"newPrice":' || to_json(CAST(listing_price AS text)) || ',"currency":' || to_json(currency)
    || ',"listingId":' || id || ',"marketplace":' || to_json(marketplace)
    || ',"kind":"listing","outboxId":' || outbox_id || '}},"timestamp":' || to_json(CAST(:timestamp AS text)) || '}',
    :now
FROM numbered ORDER BY outbox_id
RETURNING id, event_json
""")


class PlannedRow(NamedTuple):
    """A listing as ``PLAN`` returns it: ``priced`` is false when its marketplace's fees were refused."""

    id: int
    marketplace: str
    marketplace_listing_id: str | None
    old_price: Decimal | None
    currency: str
    priced: bool
    new_price: Decimal | None
    shipping: Decimal | None
    moved: bool | None


def plan_rows(session: Session, listing_ids: Sequence[int], rate: Decimal,
              fees: Iterable[Fees]) -> list[PlannedRow]:
    """The ACTIVE listings among ``listing_ids`` with their computed price (under ``fees``, checked)."""
    usable = list(fees)
    rows = session.execute(PLAN, {
        "ids": list(listing_ids), "rate": rate, "active": ListingStatus.ACTIVE.value,
        "marketplaces": [f.marketplace for f in usable], "divisors": [1 - f.total_rate for f in usable],
        "flat": [f.default_shipping_usd for f in usable], "threshold": REPRICE_THRESHOLD,
        "joom_base": JOOM_SHIPPING_BASE, "per_gram": JOOM_SHIPPING_PER_GRAM})
    return [PlannedRow(*row) for row in rows]


def record_rows(session: Session, prices: Sequence[tuple[int, Decimal, Decimal]], now: datetime,
                timestamp: str) -> list[StoredEvent]:
    """Write (listing id, new price, shipping) rows, their history and their PRICE_CHANGE outbox rows.

    Returns the outbox rows written, in id order, as the publisher needs them.
    """
    event_type = RealTimeEventType.PRICE_CHANGE.value
    channel = TYPE_CHANNELS[event_type]
    params: dict[str, Any] = {
        "ids": [p[0] for p in prices], "prices": [p[1] for p in prices], "shipping": [p[2] for p in prices],
        "now": now, "reason": "price_sync", "channel": channel, "type": event_type, "timestamp": timestamp}
    return [StoredEvent(row_id, channel, EncodedEvent(event_type, body))
            for row_id, body in sorted(session.execute(RECORD, params))]
