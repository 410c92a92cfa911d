"""Which events a target is told about (pure).

Defaults: every new ORDER_RECEIVED; an INVENTORY_CHANGE only when an item became unavailable;
a PRICE_CHANGE only at or above NOTIFY_PRICE_CHANGE_PERCENT; only types in NOTIFY_EVENTS.
A TOML rules file (NOTIFY_RULES_FILE) narrows this per target::

    [targets.discord]
    events = ["ORDER_RECEIVED"]          # a subset of NOTIFY_EVENTS
    marketplaces = ["EBAY"]              # orders from these marketplaces only
    [targets.webhook]
    inventory_only_unavailable = false   # every inventory change
    price_change_percent = 5.0
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.realtime import RealTimeEvent, RealTimeEventType

KNOWN_KEYS = {"events", "marketplaces", "inventory_only_unavailable", "price_change_percent"}


@dataclass(frozen=True)
class Rule:
    events: frozenset[str]
    price_change_percent: float
    inventory_only_unavailable: bool = True
    marketplaces: frozenset[str] | None = None

    def wants(self, event: RealTimeEvent) -> bool:
        kind = event.type.value
        if kind not in self.events:
            return False
        data = event.payload.data or {}
        if kind == "ORDER_RECEIVED":
            if event.payload.action != "created":
                return False
            return self.marketplaces is None or str(data.get("marketplace", "")).upper() in self.marketplaces
        if kind == "INVENTORY_CHANGE":
            return not self.inventory_only_unavailable or data.get("isAvailable") is False
        if kind == "PRICE_CHANGE":
            try:
                return abs(float(data.get("changePercent", 0))) >= self.price_change_percent
            except (TypeError, ValueError):
                return False
        return True


def default_rule(settings: Settings) -> Rule:
    known = {t.value for t in RealTimeEventType}
    unknown = [e for e in settings.notify_events if e not in known]
    if unknown:
        raise ValueError(f"NOTIFY_EVENTS names unknown event type(s): {', '.join(unknown)}")
    return Rule(frozenset(settings.notify_events), settings.notify_price_change_percent)


def load_rules(settings: Settings, target_names: list[str]) -> dict[str, Rule]:
    """A rule per target: the default, narrowed by NOTIFY_RULES_FILE's ``[targets.<name>]``."""
    base = default_rule(settings)
    table: dict[str, Any] = {}
    if settings.notify_rules_file:
        with open(settings.notify_rules_file, "rb") as fh:
            table = tomllib.load(fh).get("targets", {})
        strange = [n for n in table if n not in target_names]
        if strange:
            raise ValueError(f"{settings.notify_rules_file}: no configured target named {', '.join(strange)} "
                             f"(configured: {', '.join(target_names) or 'none'})")
    return {name: _narrow(base, table.get(name, {}), name) for name in target_names}


def _narrow(base: Rule, spec: dict[str, Any], name: str) -> Rule:
    extra = set(spec) - KNOWN_KEYS
    if extra:
        raise ValueError(f"rules for {name}: unknown key(s) {', '.join(sorted(extra))}")
    events = base.events
    if "events" in spec:
        events = frozenset(spec["events"]) & base.events
    marketplaces = frozenset(m.upper() for m in spec["marketplaces"]) if "marketplaces" in spec else None
    return Rule(events, float(spec.get("price_change_percent", base.price_change_percent)),
                bool(spec.get("inventory_only_unavailable", True)), marketplaces)
