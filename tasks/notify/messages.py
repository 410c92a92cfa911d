"""What a notification says: one event, or a summary of a burst, rendered from events (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.realtime import RealTimeEvent

SUMMARY_SHOWN = 5  # events listed by name in a summary


@dataclass(frozen=True)
class Notification:
    """``id`` is unique per notification (an event's bus id, or ``summary:<first>..<last>``)."""

    id: str
    title: str
    text: str
    url: str | None = None
    events: tuple[dict[str, Any], ...] = field(default=())
    kind: str = "event"  # event | summary | escalation | test

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "url": self.url,
                "events": list(self.events), "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notification:
        return cls(id=data["id"], title=data["title"], text=data["text"], url=data.get("url"),
                   events=tuple(data.get("events") or ()), kind=data.get("kind", "event"))


def order_url(dashboard_url: str, order_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/orders/{order_id}"


def describe(event: RealTimeEvent) -> str:
    """One line about an event."""
    data = event.payload.data or {}
    kind = event.type.value
    if kind == "ORDER_RECEIVED":
        return (f"Order {data.get('orderId', event.payload.id)} on {data.get('marketplace', '?')}: "
                f"{data.get('total', '?')} {data.get('currency', '')}".rstrip())
    if kind == "INVENTORY_CHANGE":
        state = "available again" if data.get("isAvailable") else "sold out at the supplier"
        return f"{data.get('title') or 'Product ' + event.payload.id} is {state}"
    if kind == "PRICE_CHANGE":
        return (f"Price of {data.get('kind', 'item')} {event.payload.id}: {data.get('oldPrice')} → "
                f"{data.get('newPrice')} {data.get('currency', '')} ({data.get('changePercent', '?')}%)").rstrip()
    return f"{kind} {event.payload.action} {event.payload.id}"


TITLES = {"ORDER_RECEIVED": "New order", "INVENTORY_CHANGE": "Inventory change", "PRICE_CHANGE": "Price change",
          "LISTING_UPDATE": "Listing update"}


def for_event(event: RealTimeEvent, dashboard_url: str) -> Notification:
    url = order_url(dashboard_url, event.payload.id) if event.type.value == "ORDER_RECEIVED" else None
    text = describe(event) + (f"\n{url}" if url else "")
    return Notification(id=event.id or event.payload.id, title=TITLES.get(event.type.value, event.type.value),
                        text=text, url=url, events=(event.model_dump(mode="json", exclude_none=True),))


def summary(events: list[RealTimeEvent]) -> Notification:
    """"37 inventory changes" with the first few named."""
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e.type.value] = kinds.get(e.type.value, 0) + 1
    title = ", ".join(f"{n} {TITLES.get(k, k).lower()}{'s' if n != 1 else ''}" for k, n in kinds.items())
    lines = [describe(e) for e in events[:SUMMARY_SHOWN]]
    if len(events) > SUMMARY_SHOWN:
        lines.append(f"… and {len(events) - SUMMARY_SHOWN} more")
    first, last = events[0].id, events[-1].id
    return Notification(id=f"summary:{first}..{last}", title=title, text="\n".join(lines), kind="summary",
                        events=tuple(e.model_dump(mode="json", exclude_none=True) for e in events))


def escalation(event: RealTimeEvent, dashboard_url: str, minutes: float) -> Notification:
    base = for_event(event, dashboard_url)
    return Notification(id=f"escalation:{event.payload.id}", title=f"Order not acknowledged after {minutes:g} min",
                        text=base.text, url=base.url, events=base.events, kind="escalation")
