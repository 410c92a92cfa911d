"""The listing price formula, pure: what a listing must cost to cover purchase, shipping, fees and profit.

    price = (jpy x rate + shipping) / (1 - platformFee - paymentFee - adRate - profitRate)

rounded UP to the cent (rounding down would eat into the profit). Joom ships at 5 USD plus
1 cent per gram; eBay uses the marketplace's flat default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from tasks.errors import PriceSettingError

CENT = Decimal("0.01")
# Joom's shipping: a base charge plus so much per gram (the other marketplaces use their flat default).
JOOM_SHIPPING_BASE = Decimal(5)
JOOM_SHIPPING_PER_GRAM = CENT
# A listing is repriced only when the new price moved more than this fraction.
REPRICE_THRESHOLD = Decimal("0.01")


@dataclass(frozen=True)
class Fees:
    marketplace: str
    platform_fee_rate: Decimal
    payment_fee_rate: Decimal
    ad_rate: Decimal
    profit_rate: Decimal
    default_shipping_usd: Decimal = Decimal("0")

    @property
    def total_rate(self) -> Decimal:
        return self.platform_fee_rate + self.payment_fee_rate + self.ad_rate + self.profit_rate

    def check(self) -> None:
        """Raise PriceSettingError for a setting no price can satisfy."""
        parts = (self.platform_fee_rate, self.payment_fee_rate, self.ad_rate, self.profit_rate)
        if any(part < 0 for part in parts) or self.total_rate >= 1:
            raise PriceSettingError(self.marketplace, self.total_rate)


def shipping_usd(marketplace: str, weight_grams: int, fees: Fees) -> Decimal:
    if marketplace == "JOOM":
        return JOOM_SHIPPING_BASE + JOOM_SHIPPING_PER_GRAM * weight_grams
    return fees.default_shipping_usd


def listing_price(purchase_jpy: int, jpy_to_usd: Decimal, shipping: Decimal, fees: Fees) -> Decimal:
    fees.check()
    cost = Decimal(purchase_jpy) * jpy_to_usd + shipping
    return (cost / (1 - fees.total_rate)).quantize(CENT, rounding=ROUND_CEILING)


def moved_enough(old: Decimal | None, new: Decimal) -> bool:
    """True when ``new`` differs from ``old`` by more than REPRICE_THRESHOLD (always for no old price)."""
    if old is None or old == 0:
        return True
    return abs(new - old) / old > REPRICE_THRESHOLD
