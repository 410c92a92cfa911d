"""The webhook endpoint in a real gunicorn + gevent gateway: a signed delivery sent with curl becomes ORDER_RECEIVED."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.pipeline.conftest import published_events
from tests.servers import GatewayServer
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def real_gateway(app_settings):
    server = GatewayServer(app_settings.env_items()).start()
    yield server
    server.discard()


def test_signed_joom_delivery_sent_with_curl_shows_up_as_order_received(real_gateway, app_settings, worker,
                                                                         bus_redis):
    body = '{"event":"order.created","order":{"id":"JO-2001","status":"pending","total":"50.20","currency":"USD"}}'
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", app_settings.joom_webhook_secret],
                               input=body, capture_output=True, text=True, check=True).stdout.split("= ")[1].strip()
    result = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{real_gateway.url}/api/webhooks/joom", "-H", "Content-Type: application/json",
         "-H", f"X-Joom-Signature: {signature}", "-d", body, "-w", "\n%{http_code}"],
        capture_output=True, text=True, timeout=30)
    assert result.stdout.strip().endswith("202"), result.stdout + result.stderr
    (event,) = eventually(lambda: published_events(bus_redis, "ORDER_RECEIVED"), what="ORDER_RECEIVED")
    assert event["payload"]["data"] | {"outboxId": 0} == {
        "marketplace": "JOOM", "total": "50.20", "currency": "USD", "orderId": "JO-2001", "status": "PENDING",
        "outboxId": 0}
    bad = requests.post(f"{real_gateway.url}/api/webhooks/joom", data=body,
                        headers={"X-Joom-Signature": "0" * 64, "Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid X-Joom-Signature"
