"""Auth on a real gateway: keys, browser stream tokens, the failure limit, and nothing secret in the log."""

from __future__ import annotations

import time

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer

from tests.servers import GatewayServer
from tests.sse_client import SSEClient
from tests.waiting import eventually

API = "/api/realtime"
PROTECTED = [("GET", "/status"), ("GET", "/stats"), ("GET", "/connections"), ("POST", "/test"), ("GET", "/events")]
TOKEN_COOKIE = "rakuda_rt_token"


@pytest.fixture
def lenient_gateway(gateway_factory) -> GatewayServer:
    """A gateway that tolerates many failures, for tests that fail on purpose more than 5 times."""
    return gateway_factory(AUTH_MAX_FAILURES="100")


def call(
    server: GatewayServer, method: str, path: str, headers: dict[str, str] | None = None, **kw: object
) -> requests.Response:
    # stream=True and an explicit close: /events answers 200 with an endless body.
    response = requests.request(method, server.url + API + path, headers=headers, timeout=10, stream=True, **kw)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        response.close()
    else:
        response.content  # noqa: B018 - read the body, then release the connection
        response.close()
    return response


def token_for(server: GatewayServer) -> requests.Response:
    response = requests.post(server.url + API + "/token", headers=server.headers(), timeout=10)
    assert response.status_code == 200, response.text
    return response


def assert_json_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["error"]
    return body


def test_requests_without_a_valid_key_get_a_json_401_on_every_route(lenient_gateway: GatewayServer):
    for method, path in PROTECTED:
        assert "missing" in assert_json_error(call(lenient_gateway, method, path), 401)["error"]
        assert_json_error(call(lenient_gateway, method, path, headers={"X-API-Key": "not-the-key"}), 401)
        assert_json_error(call(lenient_gateway, method, path, headers={"Authorization": "Bearer not-the-key"}), 401)
        # A key that shares a prefix with the real one is still wrong (the whole key is compared).
        assert_json_error(call(lenient_gateway, method, path, headers={"X-API-Key": "test-key-"}), 401)
        assert_json_error(call(lenient_gateway, method, path, headers={"Authorization": "Basic test-key"}), 401)


def test_health_needs_no_key(lenient_gateway: GatewayServer):
    response = requests.get(lenient_gateway.url + "/api/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["redisReachable"] is True
    assert response.json()["status"] == "ok"


@pytest.mark.module_gateway
def test_key_works_as_header_or_bearer(gateway: GatewayServer):
    assert call(gateway, "GET", "/status", headers={"X-API-Key": "test-key"}).status_code == 200
    assert call(gateway, "GET", "/status", headers={"Authorization": "Bearer test-key"}).status_code == 200
    assert call(gateway, "GET", "/stats", headers={"Authorization": "Bearer test-key"}).status_code == 200
    assert call(gateway, "GET", "/connections", headers={"Authorization": "Bearer test-key"}).status_code == 200
    assert call(gateway, "POST", "/test", headers={"Authorization": "Bearer test-key"}).status_code == 201
    with SSEClient(gateway.url + API + "/events", headers={"Authorization": "Bearer test-key"}) as stream:
        assert stream.status == 200
        assert stream.next(10).event == "connected"


@pytest.mark.module_gateway
def test_token_opens_the_stream_in_the_query_or_as_the_cookie(gateway: GatewayServer):
    with requests.Session() as browser:
        issued = browser.post(gateway.url + API + "/token", headers=gateway.headers(), timeout=10)
        assert issued.status_code == 200
        body = issued.json()
        assert body["expiresIn"] > 0
        assert body["cookie"] == TOKEN_COOKIE
        token = body["token"]
        assert "test-key" not in token

        with SSEClient(gateway.url + API + f"/events?token={token}") as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            first = stream.next(10)
            assert first.event == "connected"
            assert first.json["connectionId"]

        cookie = next(c for c in browser.cookies if c.name == TOKEN_COOKIE)
        assert cookie.value == token
        assert cookie.path == API
        assert cookie.has_nonstandard_attr("HttpOnly")
        # The session sends the cookie back as a browser would (same path rules), and nothing else.
        with browser.get(gateway.url + API + "/events", stream=True, timeout=10) as response:
            assert response.status_code == 200
            lines = []
            for line in response.iter_lines(decode_unicode=True):
                lines.append(line)
                if line == "event: connected":
                    break
            assert "event: connected" in lines


def test_forged_garbled_or_misused_token_is_a_401(lenient_gateway: GatewayServer):
    good = token_for(lenient_gateway).json()["token"]
    # A genuine token opens the stream only; it does not unlock the other routes.
    assert_json_error(call(lenient_gateway, "GET", f"/status?token={good}"), 401)
    assert_json_error(call(lenient_gateway, "GET", "/status", headers={"Authorization": f"Bearer {good}"}), 401)
    assert_json_error(call(lenient_gateway, "GET", "/status", cookies={TOKEN_COOKIE: good}), 401)
    payload, _, signature = good.rpartition(".")
    # Flip the FIRST character: the last one of a base64 signature also carries unused bits,
    # and changing only those leaves the same signature bytes (a flaky "forgery").
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    other_secret = URLSafeTimedSerializer("not-the-secret", salt="rakuda-realtime-stream").dumps({"k": "x"})
    for bad in ["garbage", "", f"{payload}.{flipped}", other_secret, good + "x", good[:-4]]:
        response = call(lenient_gateway, "GET", f"/events?token={bad}")
        assert_json_error(response, 401)
        response = call(lenient_gateway, "GET", "/events", cookies={TOKEN_COOKIE: bad} if bad else None)
        assert_json_error(response, 401)


def test_expired_token_is_a_401_that_says_so(gateway_factory):
    server = gateway_factory(REALTIME_TOKEN_TTL="1")
    issued = token_for(server).json()
    assert issued["expiresIn"] == 1
    time.sleep(2.2)

    body = assert_json_error(call(server, "GET", f"/events?token={issued['token']}"), 401)
    assert body["code"] == "token_expired"
    body = assert_json_error(call(server, "GET", "/events", cookies={TOKEN_COOKIE: issued["token"]}), 401)
    assert body["code"] == "token_expired"


def test_repeated_failures_block_the_address_even_for_the_right_key(gateway_factory):
    server = gateway_factory(AUTH_MAX_FAILURES="3")
    # A request without credentials (a page load before login) is no guess at the key: not counted.
    for _ in range(4):
        assert_json_error(call(server, "GET", "/status"), 401)
    assert call(server, "GET", "/status", headers=server.headers()).status_code == 200

    for _ in range(3):
        assert_json_error(call(server, "GET", "/status", headers={"X-API-Key": "guess"}), 401)

    for method, path in [("GET", "/status"), ("GET", "/events"), ("POST", "/token")]:
        response = call(server, method, path, headers=server.headers())
        assert_json_error(response, 429)
        assert int(response.headers["Retry-After"]) > 0
    # Health stays public (and answers) for a blocked address.
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 200


def test_keys_and_tokens_never_reach_the_log(gateway: GatewayServer):
    token = token_for(gateway).json()["token"]
    with SSEClient(gateway.url + API + f"/events?token={token}") as stream:
        assert stream.next(10).event == "connected"
    wrong = "wrong-key-3f9c2a7d"
    assert_json_error(call(gateway, "GET", "/status", headers={"X-API-Key": wrong}), 401)
    assert_json_error(call(gateway, "GET", f"/events?token={token}x"), 401)
    assert call(gateway, "GET", "/status", headers={"Authorization": "Bearer test-key"}).status_code == 200

    # The stream's access-log line is written once the server has seen the client leave.
    log = eventually(lambda: (text := gateway.read_log()).count(f"{API}/events") >= 2 and text, timeout=10,
                     what="both streams' access-log lines")
    assert f"{API}/status" in log
    for secret in ["test-key", "test-secret", token, token[:20], wrong]:
        assert secret not in log, f"{secret!r} appears in the gateway log"


@pytest.mark.module_gateway
def test_a_token_does_not_carry_a_bare_hash_of_the_key(gateway: GatewayServer):
    """Regression: the token's readable payload held sha256(key)[:16], open to offline guessing."""
    import base64
    import hashlib

    token = token_for(gateway).json()["token"]
    payload = token.split(".")[0]
    readable = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert hashlib.sha256(b"test-key").hexdigest()[:16] not in readable


def test_behind_a_trusted_proxy_one_guesser_does_not_block_everyone(gateway_factory):
    server = gateway_factory(AUTH_MAX_FAILURES="2", TRUSTED_PROXIES="1")
    for _ in range(2):
        assert_json_error(call(server, "GET", "/status", headers={"X-API-Key": "guess",
                                                                   "X-Forwarded-For": "203.0.113.7"}), 401)
    blocked = call(server, "GET", "/status", headers={"X-API-Key": "test-key", "X-Forwarded-For": "203.0.113.7"})
    assert_json_error(blocked, 429)
    other = call(server, "GET", "/status", headers={"X-API-Key": "test-key", "X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 200, other.text
