"""Roles on a real gateway: read keys read; admin keys may also change things and see other clients."""

from __future__ import annotations

import requests

from tests.sse_client import SSEClient

READ = {"X-API-Key": "read-key-1"}
ADMIN = {"X-API-Key": "admin-key-1"}
READ_ROUTES = [("GET", "/api/realtime/status"), ("GET", "/api/realtime/stats"), ("POST", "/api/realtime/token"),
               ("GET", "/metrics")]
ADMIN_ROUTES = [("POST", "/api/realtime/test"), ("GET", "/api/realtime/connections"),
                ("GET", "/api/webhooks/events"), ("POST", "/api/webhooks/events/1/retry")]


def test_a_read_key_reads_and_gets_a_json_403_on_every_admin_route(gateway_factory):
    server = gateway_factory(API_KEYS="read-key-1", ADMIN_API_KEYS="admin-key-1", AUTH_MAX_FAILURES="2")
    for method, path in READ_ROUTES:
        response = requests.request(method, server.url + path, headers=READ, timeout=10)
        assert response.status_code == 200, (path, response.text)
    with SSEClient(server.url + "/api/realtime/events", READ) as stream:
        assert stream.status == 200 and stream.next(10).event == "connected"

    for method, path in ADMIN_ROUTES:
        for headers in (READ, {"Authorization": "Bearer read-key-1"}):
            response = requests.request(method, server.url + path, headers=headers, timeout=10)
            assert response.status_code == 403, (path, response.text)
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
            assert body["status"] == 403 and "ADMIN_API_KEYS" in body["error"]
    # A 403 is not a guess at a key: the read key still works (AUTH_MAX_FAILURES is 2).
    assert requests.get(server.url + "/api/realtime/status", headers=READ, timeout=10).status_code == 200


def test_an_admin_key_does_the_admin_routes_and_reads_too(gateway_factory):
    server = gateway_factory(API_KEYS="read-key-1", ADMIN_API_KEYS="admin-key-1")
    for method, path in READ_ROUTES:
        response = requests.request(method, server.url + path, headers=ADMIN, timeout=10)
        assert response.status_code == 200, (path, response.text)
    token = requests.post(server.url + "/api/realtime/token", headers=ADMIN, timeout=10).json()["token"]
    with SSEClient(server.url + f"/api/realtime/events?token={token}") as stream:
        assert stream.next(10).event == "connected"
        listed = requests.get(server.url + "/api/realtime/connections", headers=ADMIN, timeout=10)
        assert listed.status_code == 200 and listed.json()["total"] == 1
    published = requests.post(server.url + "/api/realtime/test", headers=ADMIN, timeout=10)
    assert published.status_code == 201, published.text
    # The admin key is no read key's substitute the other way round: an unknown key is still a 401.
    assert requests.post(server.url + "/api/realtime/test", headers={"X-API-Key": "admin-key-"},
                         timeout=10).status_code == 401


def test_run_script_makes_the_development_key_an_admin_too():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "scripts" / "run").read_text()
    assert 'export ADMIN_API_KEYS="${ADMIN_API_KEYS:-${API_KEYS%%,*}}"' in text
