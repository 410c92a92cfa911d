"""The acknowledge button on an order's page, and the dashboard's count of unacknowledged orders."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_dashboard import CONNECTED, indicator, log_in

pytestmark = pytest.mark.browser


def test_acknowledging_an_order_on_its_page_updates_the_dashboard_count(page: Page, dashboard, catalogue):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    expect(page.locator("#unacknowledged-count")).to_have_text("1", timeout=10_000)
    other = page.context.new_page()  # an open dashboard sees the acknowledgement arrive live
    log_in(other, dashboard.url)
    expect(other.locator("#unacknowledged-count")).to_have_text("1", timeout=10_000)
    page.goto(f"{dashboard.url}/orders/{catalogue['order']}")
    button = page.get_by_role("button", name="Acknowledge order")
    expect(button).to_be_enabled(timeout=10_000)
    button.click()
    expect(page.get_by_role("button", name="Acknowledged")).to_be_disabled(timeout=10_000)
    expect(page.locator("#detail dl")).to_contain_text(re.compile(r"Acknowledged\s*\d"))
    expect(other.locator("#unacknowledged-count")).to_have_text("0", timeout=10_000)
