"""Pages and answers carry a strict Content-Security-Policy and friends; production cookies are Secure."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.module_gateway
@pytest.mark.parametrize("path", ["/", "/orders/1", "/api/docs", "/api/health", "/api/openapi.json"])
def test_every_answer_has_the_security_headers(gateway, path):
    headers = requests.get(gateway.url + path, timeout=5).headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_stream_token_cookie_is_secure_in_production_even_behind_plain_http(gateway_factory):
    strong = "k" * 32
    server = gateway_factory(RAKUDA_ENV="production", SECRET_KEY="s" * 48, API_KEYS=strong, ADMIN_API_KEYS=strong)
    cookie = requests.post(server.url + "/api/realtime/token", headers={"X-API-Key": strong},
                           timeout=5).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


@pytest.mark.module_gateway
def test_the_cookie_is_not_forced_secure_in_development(gateway):
    cookie = requests.post(gateway.url + "/api/realtime/token", headers=gateway.headers(),
                           timeout=5).headers["Set-Cookie"]
    assert "Secure" not in cookie  # a plain-http development gateway must keep working in a browser


def test_error_bodies_carry_no_exception_text_when_redis_is_down(gateway_factory):
    from tests.servers import free_port

    server = gateway_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    for method, path in (("GET", "/api/realtime/stats"), ("GET", "/api/realtime/events"),
                         ("POST", "/api/realtime/test")):
        with requests.request(method, server.url + path, headers=server.headers(), timeout=10, stream=True) as answer:
            assert answer.status_code in (503, 200), (path, answer.status_code)
            if answer.status_code == 503:
                text = answer.text.lower()
                assert "error " not in text and "refused" not in text and "errno" not in text, (path, text)
    status = requests.get(server.url + "/api/realtime/status", headers=server.headers(), timeout=10).json()
    assert "refused" not in str(status).lower()
