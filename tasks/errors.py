"""Errors of the task side: transient ones are retried, permanent ones become a FAILED/ERROR state."""

from __future__ import annotations

from decimal import Decimal


class TransientError(Exception):
    """Worth retrying: a timeout, a refused connection, a 5xx or a 429 from a remote service."""


class PermanentError(Exception):
    """Retrying will not help (a 4xx with a reason): the record goes to its error state."""


class PriceSettingError(ValueError):
    """Fees and profit of a marketplace add up to 100% or more: no price can cover them."""

    def __init__(self, marketplace: str, total: Decimal) -> None:
        self.marketplace = marketplace
        self.total = total
        super().__init__(
            f"price setting of {marketplace}: platform fee + payment fee + ad rate + profit = {total} "
            "must be below 1 (no price covers fees of 100% or more)"
        )


class MissingExchangeRateError(LookupError):
    def __init__(self) -> None:
        super().__init__("no JPY->USD exchange rate stored: insert one into exchange_rates (rakuda demo seed does)")
