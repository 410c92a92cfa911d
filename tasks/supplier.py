"""Where a product's availability and purchase price come from: an HTTP supplier API or a sandbox.

HTTP protocol (JSON): ``GET {SUPPLIER_API_URL}/items/{source}/{source_item_id}`` answers
``{"available": true, "price_jpy": 12800}``; 404 means the item is gone (unavailable).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from tasks.errors import PermanentError
from tasks.http_json import HttpJson


@dataclass(frozen=True)
class SupplierItem:
    available: bool
    price_jpy: int | None  # None when the supplier no longer shows a price

    def state_hash(self) -> str:
        return hashlib.sha256(f"{self.available}|{self.price_jpy}".encode()).hexdigest()


class SupplierClient(Protocol):
    def fetch(self, source: str, source_item_id: str) -> SupplierItem: ...


class HttpSupplierClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.http = HttpJson(base_url, timeout)

    def fetch(self, source: str, source_item_id: str) -> SupplierItem:
        status, body = self.http.request("GET", f"/items/{quote(source)}/{quote(source_item_id, safe='')}")
        if status == 404:
            return SupplierItem(available=False, price_jpy=None)
        if not isinstance(body, dict) or not isinstance(body.get("available"), bool):
            raise PermanentError(f"supplier answered without a boolean 'available' for {source}/{source_item_id}")
        price = body.get("price_jpy")
        return SupplierItem(available=body["available"], price_jpy=int(price) if price is not None else None)


class SandboxSupplier:
    """A deterministic supplier for the demo: the state of an item depends only on the seed,
    the item and the current time slot, so the same seed replays the same story.

    In each slot of ``slot_s`` seconds, an item is out of stock with probability ~12% and its
    price drifts by up to +-20% around a base derived from its id.
    """

    def __init__(self, seed: int, slot_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.slot_s = slot_s
        self.clock = clock

    def _roll(self, *parts: object) -> int:
        digest = hashlib.sha256("|".join(str(p) for p in (self.seed, *parts)).encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def base_price(self, source: str, source_item_id: str) -> int:
        return 1000 + self._roll("base", source, source_item_id) % 49000 // 100 * 100

    def fetch(self, source: str, source_item_id: str) -> SupplierItem:
        slot = int(self.clock() // self.slot_s)
        available = self._roll("stock", source, source_item_id, slot) % 100 >= 12
        drift = self._roll("price", source, source_item_id, slot) % 41 - 20  # -20..+20 %
        price = self.base_price(source, source_item_id) * (100 + drift) // 100
        return SupplierItem(available=available, price_jpy=price)
