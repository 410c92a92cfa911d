"""The sandbox simulators are deterministic: the same seed tells the same story."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.errors import PermanentError
from tasks.marketplace import SandboxMarketplace
from tasks.supplier import SandboxSupplier


def test_same_seed_and_time_slot_give_the_same_supplier_answers():
    clock = iter([1000.0] * 400).__next__
    a, b = SandboxSupplier(7, clock=clock), SandboxSupplier(7, clock=clock)
    items = [("MERCARI", f"demo{i:05d}") for i in range(200)]
    answers = [a.fetch(*item) for item in items]
    assert answers == [b.fetch(*item) for item in items]
    assert 5 <= sum(not x.available for x in answers) <= 50  # ~12 % out of stock per slot
    assert answers != [SandboxSupplier(8, clock=lambda: 1000.0).fetch(*item) for item in items]


def test_supplier_state_changes_between_time_slots():
    early, late = SandboxSupplier(7, clock=lambda: 0.0), SandboxSupplier(7, clock=lambda: 31.0)
    items = [("RAKUTEN", f"demo{i:05d}") for i in range(50)]
    assert [early.fetch(*i) for i in items] != [late.fetch(*i) for i in items]


def test_sandbox_marketplace_accepts_or_refuses_the_same_skus_for_a_seed():
    def outcomes(seed):
        market = SandboxMarketplace(seed)
        result = []
        for i in range(200):
            try:
                result.append(market.create_listing("JOOM", f"ALS-J{i:06d}", "t", Decimal("10"), "USD", Decimal("5")))
            except PermanentError:
                result.append(None)
        return result

    first = outcomes(3)
    assert first == outcomes(3)
    assert 1 <= first.count(None) <= 25  # ~5 % refused, with a reason
    with pytest.raises(PermanentError, match="rejected"):
        market = SandboxMarketplace(3)
        market.create_listing("JOOM", f"ALS-J{first.index(None):06d}", "t", Decimal("10"), "USD", Decimal("5"))
