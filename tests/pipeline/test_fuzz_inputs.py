"""Property-based fuzzing of what the internet can send: webhooks, the JSON API's and the stream's parameters.

Each property runs 300 generated cases (derandomized: the same ones every run; hypothesis tries
the small and boundary values of every strategy first, so each provider, route, parameter and
kind of body is among them). The promise: never a 5xx, and nothing stored without a valid
signature.
"""

from __future__ import annotations

import json
import string
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shared.models import WebhookEvent
from shared.webhook_signatures import sign_ebay, sign_joom
from tests.pipeline import samples
from tests.servers import GatewayServer

JOOM_SECRET, EBAY_SECRET = "joom-test-secret", "ebay-test-secret"
SIGNATURE_CHARS = string.ascii_letters + string.digits + "+/=-_ .:"
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def mutated(sample: dict) -> st.SearchStrategy[dict]:
    """A real notice with one field replaced by anything: the shapes a hostile sender would try."""
    def paths(value, prefix=()):
        if isinstance(value, dict):
            for key, child in value.items():
                yield (*prefix, key)
                yield from paths(child, (*prefix, key))

    all_paths = list(paths(sample))

    @st.composite
    def build(draw):
        body = json.loads(json.dumps(sample))
        path = draw(st.sampled_from(all_paths))
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = draw(json_values)
        return body

    return build()


def stored(runtime) -> int:
    with runtime.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


@FUZZ
@given(provider=st.sampled_from(["joom", "ebay"]), body=st.binary(max_size=300) | json_values.map(
    lambda v: json.dumps(v).encode()), signature=st.text(SIGNATURE_CHARS, max_size=90),
    timestamp=st.text(string.digits, max_size=12))
def test_unsigned_or_badly_signed_deliveries_store_nothing(runtime, http, provider, body, signature, timestamp):
    headers = {"X-Joom-Signature": signature} if provider == "joom" else {
        "X-EBAY-SIGNATURE": signature, "X-EBAY-TIMESTAMP": timestamp}
    response = http.post(f"/api/webhooks/{provider}", data=body, headers=headers)
    assert response.status_code < 500, response.json
    assert response.status_code in (400, 401, 413)
    assert stored(runtime) == 0


@FUZZ
@given(provider=st.sampled_from(["joom", "ebay"]), data=st.data())
def test_signed_but_hostile_deliveries_never_fail_the_server(runtime, http, provider, data):
    sample = samples.JOOM_ORDER_CREATED if provider == "joom" else samples.EBAY_ORDER_CREATED
    body = data.draw(mutated(sample) | json_values.map(lambda v: {"v": v}))
    raw = json.dumps(body).encode()
    before = stored(runtime)
    if provider == "joom":
        headers = {"X-Joom-Signature": sign_joom(JOOM_SECRET, raw)}
    else:
        ts = str(int(time.time()))
        headers = {"X-EBAY-SIGNATURE": sign_ebay(EBAY_SECRET, ts, raw), "X-EBAY-TIMESTAMP": ts}
    response = http.post(f"/api/webhooks/{provider}", data=raw, headers=headers)
    assert response.status_code in (200, 202, 400, 413), (response.status_code, response.json, body)
    assert stored(runtime) == before + (1 if response.status_code == 202 else 0)


API_ROUTES = ["/api/products", "/api/inventory", "/api/listings", "/api/pricing", "/api/orders",
              "/api/webhooks/events", "/api/realtime/stats"]
PARAMS = ["limit", "offset", "status", "marketplace", "productId", "listingId", "available", "provider", "days"]


@FUZZ
@given(route=st.sampled_from(API_ROUTES), query=st.dictionaries(st.sampled_from(PARAMS), st.text(max_size=30),
                                                                  max_size=4),
       item=st.text(max_size=30))
def test_the_json_api_answers_any_parameters_without_a_server_error(migrated, http, route, query, item):
    headers = {"X-API-Key": "test-key"}
    response = http.get(route, query_string=query, headers=headers)
    assert response.status_code in (200, 400), (route, query, response.status_code, response.json)
    if route in ("/api/products", "/api/listings", "/api/orders", "/api/pricing", "/api/inventory"):
        one = http.get(f"{route}/{requests.utils.quote(item, safe='')}", headers=headers)
        assert one.status_code in (308, 400, 404), (route, item, one.status_code)  # 308: Flask merges "//"


@FUZZ
@given(channels=st.none() | st.text(max_size=40), last_event_id=st.none() | st.text(max_size=60),
       header_id=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip),
       token=st.none() | st.text(string.printable.strip(), max_size=40))
def test_the_stream_answers_any_parameters_and_headers_without_a_server_error(
        real_stream_gateway, channels, last_event_id, header_id, token):
    params = {k: v for k, v in (("channels", channels), ("lastEventId", last_event_id), ("token", token))
              if v is not None}
    headers = {"X-API-Key": "test-key"} if token is None else {}
    if header_id is not None:
        headers["Last-Event-ID"] = header_id
    with requests.get(real_stream_gateway.url + "/api/realtime/events", params=params, headers=headers,
                      stream=True, timeout=10) as response:
        assert response.status_code in (200, 400, 401, 429), (params, headers, response.status_code)


@pytest.fixture
def real_stream_gateway(app_settings):
    server = GatewayServer({**app_settings.env_items(), "AUTH_MAX_FAILURES": "100000"}).start()
    yield server
    server.discard()
