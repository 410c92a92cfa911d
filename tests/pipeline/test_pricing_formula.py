"""The listing price formula against worked examples, and the settings it refuses."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tasks.errors import PriceSettingError
from tasks.pricing import Fees, listing_price, moved_enough, shipping_usd

EBAY = Fees("EBAY", D("0.1325"), D("0.03"), D("0.02"), D("0.15"), default_shipping_usd=D("15.00"))
JOOM = Fees("JOOM", D("0.15"), D("0.03"), D("0"), D("0.20"))
ZERO = Fees("EBAY", D("0"), D("0"), D("0"), D("0"))

# (marketplace fees, purchase JPY, JPY->USD, weight g, expected price) with the arithmetic spelled out.
WORKED = [
    # Joom: 10000 x 0.0067 = 67; shipping 5 + 0.01 x 500 = 10; 77 / (1 - 0.38) = 124.1935.. -> 124.20
    (JOOM, 10000, D("0.0067"), 500, D("124.20")),
    # eBay: 67 + flat 15 = 82; 82 / (1 - 0.3325) = 122.8464.. -> 122.85
    (EBAY, 10000, D("0.0067"), 500, D("122.85")),
    # eBay ignores weight: same as above at 3 kg
    (EBAY, 10000, D("0.0067"), 3000, D("122.85")),
    # Joom, heavy: 5000 x 0.0067 = 33.5; shipping 5 + 25 = 30; 63.5 / 0.62 = 102.4193.. -> 102.42
    (JOOM, 5000, D("0.0067"), 2500, D("102.42")),
    # exact cents stay as they are: (1000 x 0.01 + 5) / 0.75 = 20.00
    (Fees("JOOM", D("0.15"), D("0.05"), D("0.05"), D("0")), 1000, D("0.01"), 0, D("20.00")),
    # any fraction of a cent rounds UP: 1 x 0.0067 = 0.0067 -> 0.01
    (ZERO, 1, D("0.0067"), 0, D("0.01")),
    # free item, Joom still charges shipping: 5 / 0.62 = 8.0645.. -> 8.07
    (JOOM, 0, D("0.0067"), 0, D("8.07")),
]


@pytest.mark.parametrize(("fees", "jpy", "rate", "grams", "expected"), WORKED)
def test_price_matches_worked_example(fees: Fees, jpy: int, rate: D, grams: int, expected: D) -> None:
    assert listing_price(jpy, rate, shipping_usd(fees.marketplace, grams, fees), fees) == expected


@pytest.mark.parametrize("rates", [
    ("0.5", "0.2", "0.1", "0.2"),  # exactly 100 %: would divide by zero
    ("0.6", "0.2", "0.1", "0.2"),  # 110 %: would give a negative price
    ("0.1", "-0.05", "0", "0.2"),  # a negative fee is a typo, not a discount
])
def test_settings_whose_fees_and_profit_reach_100_percent_are_refused(rates: tuple[str, ...]) -> None:
    fees = Fees("EBAY", *(D(r) for r in rates))
    with pytest.raises(PriceSettingError, match="EBAY.*must be below 1"):
        listing_price(10000, D("0.0067"), D("15"), fees)


@pytest.mark.parametrize(("old", "new", "moved"), [
    (None, D("10.00"), True),
    (D("100.00"), D("101.00"), False),  # exactly 1 %: not more than 1 %
    (D("100.00"), D("101.01"), True),
    (D("100.00"), D("98.99"), True),
    (D("100.00"), D("99.50"), False),
])
def test_listing_is_repriced_only_when_it_moved_more_than_one_percent(old, new, moved) -> None:
    assert moved_enough(old, new) is moved
