"""A new order takes its product off every marketplace: no second sale of a one-off item.

In the order's transaction, under a lock on the product row (so two orders for one product
are decided one after the other): the ordered listing becomes SOLD and the product's other
ACTIVE listings ENDED with reason ``sold_elsewhere``, each with its LISTING_UPDATE. The
caller queues the marketplace calls that take the ended ones down, after the commit.

An order whose listing is no longer ACTIVE (sold already, or ended because the product sold
elsewhere and the end had not reached that marketplace yet) is *oversold*: it is kept and
flagged for a person to cancel or source a second item.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from shared.models import Listing, ListingStatus, Order, Product
from shared.realtime import RealTimeEvent, RealTimeEventType
from tasks.outbox import Changes

SOLD_ELSEWHERE = "sold_elsewhere"


@dataclass
class Claim:
    sold_listing_ids: list[int] = field(default_factory=list)
    ended_listing_ids: list[int] = field(default_factory=list)  # to take down on their marketplace
    oversold: bool = False


def claim_listings(changes: Changes, order: Order) -> Claim:
    """Mark the order's listings SOLD and end their products' other listings; flag an oversell."""
    session = changes.session
    claim = Claim()
    listing_ids = sorted({line.listing_id for line in order.lines if line.listing_id is not None})
    if not listing_ids:
        return claim
    product_ids = sorted(set(session.scalars(select(Listing.product_id).where(Listing.id.in_(listing_ids)))))
    # Product rows first, in id order: concurrent orders for one product queue here. NO KEY UPDATE
    # locks, because the order lines already hold KEY SHARE on their listings (the foreign key):
    # a plain FOR UPDATE would wait for the other order's lines while it waits for our product.
    session.scalars(select(Product.id).where(Product.id.in_(product_ids)).order_by(Product.id)
                    .with_for_update(key_share=True)).all()
    listings = session.scalars(select(Listing).where(Listing.product_id.in_(product_ids)).order_by(Listing.id)
                               .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    ordered = [listing for listing in listings if listing.id in listing_ids]
    for listing in ordered:
        if listing.status != ListingStatus.ACTIVE:
            claim.oversold = True
            continue
        listing.status = ListingStatus.SOLD
        claim.sold_listing_ids.append(listing.id)
        changes.emit(_listing_event(listing, ListingStatus.ACTIVE, "updated", order))
    sold_products = {listing.product_id for listing in ordered if listing.status == ListingStatus.SOLD}
    for listing in listings:
        if listing.product_id in sold_products and listing.status == ListingStatus.ACTIVE:
            listing.status = ListingStatus.ENDED
            listing.end_reason = SOLD_ELSEWHERE
            claim.ended_listing_ids.append(listing.id)
            changes.emit(_listing_event(listing, ListingStatus.ACTIVE, "deleted", order, reason=SOLD_ELSEWHERE))
    order.oversold = claim.oversold
    return claim


def _listing_event(listing: Listing, previous: ListingStatus, action: str, order: Order,
                   **extra: object) -> RealTimeEvent:
    data = {"status": listing.status.value, "previousStatus": previous.value,
            "marketplace": listing.marketplace.value, "productId": listing.product_id, "sku": listing.sku,
            "orderId": order.marketplace_order_id, "orderMarketplace": order.marketplace.value, **extra}
    return RealTimeEvent.create(RealTimeEventType.LISTING_UPDATE, listing.id, action, data)  # type: ignore[arg-type]
