"""The live dashboard in a real Chromium against a real gunicorn+gevent gateway and PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.models import Marketplace, Order, OrderStatus, Product
from shared.realtime import RealTimeEvent
from tests.browser.conftest import FAST_BACKOFF, ROOT, DashboardServer
from tests.waiting import eventually

pytestmark = pytest.mark.browser

CONNECTED = re.compile(r"^Connected")
RECONNECTING = re.compile(r"^Reconnecting")
DISCONNECTED = re.compile(r"^Disconnected")


def log_in(page: Page, url: str, key: str = "test-key") -> None:
    """Open the dashboard and enter the key with the keyboard only."""
    page.goto(url + "/")
    field = page.get_by_label("API key", exact=True)
    expect(field).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def indicator(page: Page):
    return page.get_by_role("status").filter(has=page.locator(".dot"))


def tooltip(page: Page):
    """The indicator's tooltip, shown while the pointer or the keyboard focus is on it."""
    return page.locator("#connection .tooltip")


def products_row(page: Page, product_id: int):
    return page.get_by_role("table", name="Products").locator(f'tr[data-id="{product_id}"]')


def set_available(db, product_id: int, available: bool) -> None:
    with Session(db) as session, session.begin():
        session.execute(update(Product).where(Product.id == product_id).values(is_available=available))


def inventory_change(product_id: int, available: bool) -> RealTimeEvent:
    return RealTimeEvent.create("INVENTORY_CHANGE", product_id, "updated",
                                {"productId": product_id, "isAvailable": available})


def test_dot_turns_green_after_login_and_the_tables_fill(page: Page, dashboard, catalogue, bus, artifacts):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    expect(page.get_by_role("table", name="Products")).to_contain_text("Film camera Olympus OM-1")
    expect(page.get_by_role("table", name="Listings")).to_contain_text("189.00 USD")
    expect(page.get_by_role("table", name="Listings")).to_contain_text("JOOM")
    expect(page.get_by_role("table", name="Orders")).to_contain_text("A. Buyer")
    indicator(page).hover()
    expect(tooltip(page)).to_have_text(re.compile(r"^Connected since .*last heartbeat"))

    # the live panel draws from /api/realtime/stats: this page's own stream is counted,
    # and a little traffic shows up as rates and lines
    expect(page.locator("#conn-active")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=10_000)
    for i in range(10):  # five seconds of traffic: two or three polls of the stats see it
        bus.publish("inventory", inventory_change(catalogue["camera"], True))
        bus.publish("orders", RealTimeEvent.create("ORDER_RECEIVED", catalogue["order"], "updated"))
        if i % 2:
            bus.publish("listings", RealTimeEvent.create("LISTING_UPDATE", catalogue["joom"], "updated"))
        page.wait_for_timeout(500)
    # one toast per message, at most three on screen
    expect(page.get_by_role("region", name="Notifications").get_by_role("link")).to_have_count(3)
    rates = page.get_by_role("table", name="Event rates")
    today = rates.get_by_role("row", name=re.compile("^INVENTORY_CHANGE")).get_by_role("cell").last
    expect(today).not_to_have_text("0")
    expect(page.locator("#rate-chart polyline")).to_have_count(4)
    page.screenshot(path=artifacts / "dashboard.png", full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(artifacts / "dashboard.png", ROOT / "docs" / "dashboard.png")


def test_inventory_change_shows_a_toast_and_the_new_availability_without_reload(
        page: Page, dashboard, catalogue, db, bus, artifacts):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    row = products_row(page, catalogue["lens"])
    expect(row).to_contain_text("Available")
    page.evaluate("window.__sameDocument = true")

    set_available(db, catalogue["lens"], False)
    bus.publish("inventory", inventory_change(catalogue["lens"], False))
    published = time.monotonic()
    toast = page.get_by_role("region", name="Notifications").get_by_role(
        "link", name=f"Inventory change: product {catalogue['lens']} updated")
    expect(toast).to_be_visible(timeout=3_000)
    assert toast.evaluate("t => getComputedStyle(t).animationName") == "none", "prefers-reduced-motion ignored"
    expect(row).to_contain_text("Unavailable", timeout=3_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page.screenshot(path=artifacts / "dashboard-toast.png")

    # auto-dismissed after 5 s: still there well before, gone soon after (a busy machine's margin)
    page.wait_for_timeout(max(0, 3.0 - (time.monotonic() - published)) * 1000)
    expect(toast).to_be_visible(timeout=0)
    expect(toast).to_have_count(0, timeout=6_000)
    assert time.monotonic() - published >= 4.5


def test_a_batch_shows_one_toast_with_its_count(page: Page, dashboard, catalogue, bus):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    bus.publish_many("inventory", [inventory_change(catalogue["camera"], True) for _ in range(12)])
    region = page.get_by_role("region", name="Notifications")
    expect(region.get_by_role("link", name="12 inventory changes")).to_be_visible(timeout=2_000)
    expect(region.get_by_role("link")).to_have_count(1)


def test_clicking_a_toast_opens_the_detail_page(page: Page, dashboard, catalogue, db, bus):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    bus.publish("inventory", inventory_change(catalogue["camera"], True))
    page.get_by_role("link", name=f"Inventory change: product {catalogue['camera']} updated").click()
    expect(page).to_have_url(f"{dashboard.url}/products/{catalogue['camera']}")
    expect(page.get_by_role("heading", name=f"Product {catalogue['camera']}")).to_be_visible()
    expect(page.locator("#detail")).to_contain_text("Film camera Olympus OM-1")
    expect(page.get_by_role("table", name="Listings")).to_contain_text("CAM-1")
    fields = page.locator("#detail dl")
    expect(fields).to_contain_text("AvailableYes")
    # the key is kept for the browser session: the detail page connects without asking again
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    expect(page.get_by_label("API key", exact=True)).to_be_hidden()
    # and it follows the stream too: the product's availability changes in place
    set_available(db, catalogue["camera"], False)
    bus.publish("inventory", inventory_change(catalogue["camera"], False))
    expect(fields).to_contain_text("AvailableNo", timeout=3_000)


def test_gateway_restart_turns_the_dot_red_then_green_and_delivers_what_was_missed(
        page: Page, dashboard, dashboard_settings, catalogue, db, bus):
    log_in(page, dashboard.url)
    dot = indicator(page)
    expect(dot).to_have_accessible_name(CONNECTED, timeout=10_000)
    expect(page.get_by_role("table", name="Orders")).to_contain_text("A. Buyer")

    dashboard.stop()
    expect(dot).to_have_accessible_name(RECONNECTING, timeout=8_000)
    dot.hover()
    expect(tooltip(page)).to_have_text(re.compile(r"^Reconnecting (in \d+ s|now), attempt \d+"))

    # published while no gateway is up: only the Redis history holds them
    set_available(db, catalogue["camera"], False)
    bus.publish("inventory", inventory_change(catalogue["camera"], False))
    with Session(db) as session, session.begin():
        order = Order(marketplace=Marketplace.JOOM, marketplace_order_id="J-777", buyer_name="B. Later",
                      total="64.50", currency="USD", status=OrderStatus.PENDING, raw_data={})
        session.add(order)
        session.flush()
        order_id = order.id
    bus.publish("orders", RealTimeEvent.create("ORDER_RECEIVED", order_id, "created"))
    page.wait_for_timeout(1_500)
    expect(dot).to_have_accessible_name(RECONNECTING)

    restarted = DashboardServer(dashboard_settings.env_items(), port=dashboard.port).start()
    try:
        expect(dot).to_have_accessible_name(CONNECTED, timeout=10_000)
        region = page.get_by_role("region", name="Notifications")
        missed = f"Inventory change: product {catalogue['camera']} updated"
        expect(region.get_by_role("link", name=missed)).to_be_visible()
        expect(region.get_by_role("link", name=f"Order {order_id} received")).to_be_visible()
        expect(products_row(page, catalogue["camera"])).to_contain_text("Unavailable")
        expect(page.get_by_role("table", name="Orders")).to_contain_text("B. Later")
    finally:
        restarted.discard()


def test_a_stream_without_heartbeats_is_given_up_and_reopened(page: Page, dashboard, catalogue, bus):
    log_in(page, dashboard.url)
    dot = indicator(page)
    expect(dot).to_have_accessible_name(CONNECTED, timeout=10_000)
    dashboard.pause()  # the TCP connection stays open; only the heartbeats stop
    try:
        expect(dot).to_have_accessible_name(re.compile(r"^Reconnecting .*no heartbeat for \d+ s"), timeout=6_000)
    finally:
        dashboard.resume()
    expect(dot).to_have_accessible_name(CONNECTED, timeout=10_000)
    bus.publish("inventory", inventory_change(catalogue["lens"], True))
    expect(page.get_by_role("link", name=f"Inventory change: product {catalogue['lens']} updated")).to_be_visible()


def test_a_wrong_api_key_shows_a_clear_message(page: Page, dashboard):
    log_in(page, dashboard.url, key="not-the-key")
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"^The API key was not accepted: invalid API key"))
    expect(indicator(page)).to_have_accessible_name("Disconnected: authentication failed (invalid API key)")
    indicator(page).focus()  # the tooltip shows for the keyboard too
    expect(tooltip(page)).to_have_text("Disconnected: authentication failed (invalid API key)")
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('rakuda.apiKey')") is None


def test_a_detail_page_for_an_unknown_id_says_so(page: Page, dashboard, catalogue):
    log_in(page, dashboard.url)
    expect(indicator(page)).to_have_accessible_name(CONNECTED, timeout=10_000)
    page.goto(f"{dashboard.url}/orders/999999")
    expect(page.get_by_role("heading", name="Order 999999")).to_be_visible()
    expect(page.locator("#detail")).to_contain_text("no order with id 999999")


def stream_count(server: DashboardServer) -> int:
    response = requests.get(server.url + "/api/realtime/connections", headers={"X-API-Key": "test-key"}, timeout=5)
    return response.json()["total"]


def wait_for_streams(server: DashboardServer, expected: int, timeout: float = 5.0) -> None:
    eventually(lambda: stream_count(server) == expected, timeout=timeout, interval=0.1,
               what=f"{expected} open streams")


def test_eight_tabs_share_one_stream_and_hand_it_over_when_its_tab_closes(chromium, dashboard, catalogue, bus):
    # Without sharing, eight streams would exceed the browser's six connections per origin.
    context = chromium.new_context(reduced_motion="reduce")
    context.add_init_script(FAST_BACKOFF + "sessionStorage.setItem('rakuda.apiKey', 'test-key');")
    try:
        tabs = [context.new_page() for _ in range(8)]
        for tab in tabs:
            tab.goto(dashboard.url + "/")
        for tab in tabs:
            expect(indicator(tab)).to_have_accessible_name(CONNECTED, timeout=10_000)
        wait_for_streams(dashboard, 1)

        bus.publish("orders", RealTimeEvent.create("ORDER_RECEIVED", catalogue["order"], "updated"))
        for tab in tabs:
            expect(tab.get_by_role("link", name=f"Order {catalogue['order']} updated")).to_be_visible()

        tabs[0].close()  # the tab holding the stream
        for tab in tabs[1:]:
            expect(indicator(tab)).to_have_accessible_name(CONNECTED, timeout=10_000)
        bus.publish("inventory", inventory_change(catalogue["lens"], True))
        toast = f"Inventory change: product {catalogue['lens']} updated"
        for tab in tabs[1:]:
            expect(tab.get_by_role("link", name=toast)).to_be_visible()
        wait_for_streams(dashboard, 1)
    finally:
        context.close()
