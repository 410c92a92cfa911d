"""Which order status changes a marketplace notice may make: orders only move forward.

    PENDING → PAID → SHIPPED → DELIVERED   (forward, steps may be skipped)
    PENDING | PAID | SHIPPED → CANCELLED   (not once DELIVERED)
    any → REFUNDED                         (CANCELLED too); REFUNDED is final

A notice that would move an order back (a replayed or late ``order.paid`` after a cancel) is
kept but changes nothing: marketplaces deliver at least once and out of order, so a backwards
step is never the truth.
"""

from __future__ import annotations

from shared.models import OrderStatus

_FORWARD = (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)


def refusal(current: OrderStatus, new: OrderStatus) -> str | None:
    """Why ``current`` may not become ``new``; None when the change is allowed (or changes nothing)."""
    if new == current:
        return None
    if current == OrderStatus.REFUNDED:
        return "REFUNDED is final"
    if new == OrderStatus.REFUNDED:
        return None
    if current == OrderStatus.CANCELLED:
        return f"a CANCELLED order can only become REFUNDED, not {new.value}"
    if new == OrderStatus.CANCELLED:
        return "a DELIVERED order cannot be cancelled" if current == OrderStatus.DELIVERED else None
    if _FORWARD.index(new) < _FORWARD.index(current):
        return f"{current.value} → {new.value} would move the order backwards"
    return None
