"""Hostile but validly signed webhook bodies get a 400 naming the field (never a 500), and store nothing."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from sqlalchemy import func, select

from shared.models import WebhookEvent
from tests.pipeline import samples
from tests.servers import GatewayServer

JOOM_SECRET, EBAY_SECRET = "joom-test-secret", "ebay-test-secret"


def stored(runtime) -> int:
    with runtime.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


def ebay_with(**data_changes):
    body = copy.deepcopy(samples.EBAY_ORDER_CREATED)
    body["notification"]["data"].update(data_changes)
    return body


def ebay_total(value):
    body = copy.deepcopy(samples.EBAY_ORDER_CREATED)
    body["notification"]["data"]["pricingSummary"]["total"]["value"] = value
    return body


@pytest.mark.parametrize(("body", "field"), [
    (ebay_with(cancelStatus="x"), "notification.data.cancelStatus"),
    (ebay_with(buyer="bob"), "notification.data.buyer"),
    (ebay_total("1e999999"), "notification.data.pricingSummary.total.value"),
    (ebay_total("99999999999999"), "notification.data.pricingSummary.total.value"),
    (ebay_total("NaN"), "notification.data.pricingSummary.total.value"),
    (ebay_total(True), "notification.data.pricingSummary.total.value"),
    (ebay_with(orderId="x" * 129), "notification.data.orderId"),
    (ebay_with(lineItems=[{"sku": {"a": 1}, "quantity": 1}]), "notification.data.lineItems[0].sku"),
])
def test_a_signed_ebay_body_with_a_wrong_field_is_a_400_naming_it(runtime, http, body, field):
    raw = samples.encode(body)
    response = http.post("/api/webhooks/ebay", data=raw, headers=samples.ebay_headers(raw, EBAY_SECRET))
    assert response.status_code == 400, response.json
    assert response.json["field"] == field
    assert stored(runtime) == 0


def nested(depth: int) -> list:
    value: list = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("raw", "field"), [
    (b"[" * 8000 + b"]" * 8000, "body"),  # deeper than the JSON parser goes (and within the test's size limit)
    (json.dumps({"event": "order.created", "order": {"id": "J", "x": nested(31)}}).encode(), "body"),
    (samples.encode(samples.joom(buyer_name=["Ann"])), "order.buyer_name"),
    (samples.encode(samples.joom(total="-1")), "order.total"),
])
def test_a_signed_joom_body_that_nests_too_deep_or_has_a_wrong_field_is_a_400(runtime, http, raw, field):
    response = http.post("/api/webhooks/joom", data=raw, headers=samples.joom_headers(raw, JOOM_SECRET))
    assert response.status_code == 400, response.json
    assert response.json["field"] == field
    assert stored(runtime) == 0


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_refused_not_cut(app_settings, runtime):
    server = GatewayServer(app_settings.env_items()).start()
    try:
        limit = app_settings.webhook_max_bytes
        body = samples.encode(samples.JOOM_ORDER_CREATED)
        signed = body + b" " * (limit - len(body))  # valid JSON of exactly the limit, signed
        headers = samples.joom_headers(signed, JOOM_SECRET)

        def chunks(extra: bytes):
            for start in range(0, len(signed), 4096):
                yield signed[start:start + 4096]
            if extra:
                yield extra

        over = requests.post(server.url + "/api/webhooks/joom", data=chunks(b" " * 5000), headers=headers, timeout=10)
        assert over.status_code == 413, over.text
        assert stored(runtime) == 0
        exact = requests.post(server.url + "/api/webhooks/joom", data=chunks(b""), headers=headers, timeout=10)
        assert exact.status_code == 202, exact.text  # the same body within the limit is taken
    finally:
        server.discard()


@pytest.mark.slow
def test_a_path_with_a_newline_cannot_forge_an_access_log_line(gateway):
    forged = "/x%0A127.0.0.9%20%22GET%20/api/admin%20HTTP/1.1%22%20200"
    requests.get(gateway.url + forged, timeout=5)
    requests.get(gateway.url + "/api/health", timeout=5)  # flushes the line before it
    log = gateway.read_log()
    assert not any(line.startswith("127.0.0.9") for line in log.splitlines())
    assert "/x\\x0a127.0.0.9" in log
