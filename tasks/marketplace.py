"""Where listings live: eBay and Joom through an HTTP marketplace API, or a sandbox for the demo.

HTTP protocol (JSON), ``{mp}`` being ``ebay`` or ``joom``:

* ``POST {MARKETPLACE_API_URL}/{mp}/listings`` ``{"sku", "title", "price", "currency", "shipping_cost"}``
  -> 200/201 ``{"listing_id": "..."}``. Idempotent by ``sku``: a repeated call (a retried task)
  returns the same listing. A 4xx ``{"error": reason}`` is a refusal (the listing goes to ERROR).
* ``PUT {base}/{mp}/listings/{listing_id}/price`` ``{"price", "currency"}`` -> 200.
* ``DELETE {base}/{mp}/listings/{listing_id}`` -> 200/204; 404 counts as already ended.

Timeouts, connection errors, 429 and 5xx are transient (retried with backoff).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Protocol
from urllib.parse import quote

from tasks.errors import PermanentError
from tasks.http_json import HttpJson


class MarketplaceClient(Protocol):
    def create_listing(self, marketplace: str, sku: str, title: str, price: Decimal, currency: str,
                       shipping_cost: Decimal) -> str: ...

    def update_price(self, marketplace: str, listing_id: str, price: Decimal, currency: str) -> None: ...

    def end_listing(self, marketplace: str, listing_id: str) -> None: ...


class HttpMarketplaceClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.http = HttpJson(base_url, timeout)

    def create_listing(self, marketplace: str, sku: str, title: str, price: Decimal, currency: str,
                       shipping_cost: Decimal) -> str:
        status, body = self.http.request("POST", f"/{marketplace.lower()}/listings", {
            "sku": sku, "title": title, "price": str(price), "currency": currency,
            "shipping_cost": str(shipping_cost),
        })
        if status == 404:
            raise PermanentError(f"marketplace {marketplace} has no listings endpoint (404)")
        if not isinstance(body, dict) or not body.get("listing_id"):
            raise PermanentError(f"marketplace {marketplace} answered without a listing_id for {sku}")
        return str(body["listing_id"])

    def update_price(self, marketplace: str, listing_id: str, price: Decimal, currency: str) -> None:
        status, _ = self.http.request("PUT", f"/{marketplace.lower()}/listings/{quote(listing_id, safe='')}/price",
                                      {"price": str(price), "currency": currency})
        if status == 404:
            raise PermanentError(f"listing {listing_id} does not exist on {marketplace}")

    def end_listing(self, marketplace: str, listing_id: str) -> None:
        self.http.request("DELETE", f"/{marketplace.lower()}/listings/{quote(listing_id, safe='')}")


class SandboxMarketplace:
    """Deterministic stand-in: every listing is accepted except the ~5% of titles that the sandbox seed rejects."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def _roll(self, *parts: object) -> int:
        digest = hashlib.sha256("|".join(str(p) for p in (self.seed, *parts)).encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def create_listing(self, marketplace: str, sku: str, title: str, price: Decimal, currency: str,
                       shipping_cost: Decimal) -> str:
        if self._roll("reject", marketplace, sku) % 100 < 5:
            raise PermanentError(f"sandbox {marketplace}: listing {sku} rejected (title needs item specifics)")
        prefix = "v1|" if marketplace == "EBAY" else "jm-"
        return f"{prefix}{self._roll('id', marketplace, sku) % 10**10}"

    def update_price(self, marketplace: str, listing_id: str, price: Decimal, currency: str) -> None:
        return None

    def end_listing(self, marketplace: str, listing_id: str) -> None:
        return None
