"""``rakuda tail``: events on stdout, news on stderr, resume by itself, clear exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib
import requests

from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tasks.tail import SseParser, event_line
from tests.servers import GatewayServer, free_port
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def tail(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(Path(sys.executable).with_name("rakuda")), "tail", *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def publish_test_events(server: GatewayServer, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        response = requests.post(server.url + "/api/realtime/test", headers=server.headers(), timeout=5)
        ids.append(response.json()["id"])
    return ids


def wait_connected(proc: subprocess.Popen[str], server: GatewayServer, streams: int = 1) -> None:
    def connected() -> bool:
        status = requests.get(server.url + "/api/realtime/status", headers=server.headers(), timeout=5).json()
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return bool(status["activeConnections"] >= streams)

    eventually(connected, 15, what=f"rakuda tail's {streams} stream(s) connected")


def test_tail_prints_two_events_as_json_and_exits_0(gateway):
    proc = tail("--count", "2", "--json", env={"RAKUDA_URL": gateway.url, "RAKUDA_API_KEY": "test-key"})
    wait_connected(proc, gateway)
    ids = publish_test_events(gateway, 3)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert [e["id"] for e in events] == ids[:2]
    assert all(e["type"] == "LISTING_UPDATE" for e in events)
    assert "connected" in err


def test_tail_filters_by_type_and_prints_one_line_per_event(gateway):
    proc = tail("--url", gateway.url, "--key", "test-key", "--types", "LISTING_UPDATE", "--count", "1")
    wait_connected(proc, gateway)
    [event_id] = publish_test_events(gateway, 1)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    time_, event_type, printed_id, action, payload = out.strip().split(" ", 4)
    assert (event_type, printed_id) == ("LISTING_UPDATE", event_id)
    assert action.startswith("updated:test-") and json.loads(payload)["test"] is True
    assert time_.endswith("Z")


def test_a_refused_key_exits_2_with_a_clear_message(gateway):
    proc = tail("--url", gateway.url, "--key", "wrong-key", "--count", "1")
    _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "refused" in err and "401" in err


def test_an_unreachable_gateway_exits_1_after_its_retries():
    proc = tail("--url", f"http://127.0.0.1:{free_port()}", "--key", "k", "--retries", "2")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "cannot reach" in err and "after 2 retries" in err


def test_tail_resumes_after_a_gateway_restart_without_losing_an_event(settings, redis_url):
    env = settings.env_items()
    server = GatewayServer(env).start()
    try:
        proc = tail("--url", server.url, "--key", "test-key", "--count", "4", "--json", "--retries", "20")
        wait_connected(proc, server)
        first = publish_test_events(server, 2)
        time.sleep(0.5)  # past the debounce window: the two are written before the restart
        server.stop()
        server = GatewayServer(env, port=server.port)
        # Published while no gateway runs: the history keeps them for the resume.
        bus = EventBus()
        bus.initialize(settings, client=redis_lib.Redis.from_url(redis_url))
        missed = [bus.publish("rakuda:realtime:listings",
                              RealTimeEvent.create("LISTING_UPDATE", f"gap-{n}", "updated", {"n": n}))
                  for n in range(2)]
        bus.close()
        server.start()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert [json.loads(line)["id"] for line in out.splitlines()] == first + missed
        assert "resumed after" in err
    finally:
        server.discard()


def test_the_parser_reads_the_stream_framing():
    parser = SseParser()
    lines = ["retry: 3000", "event: connected", 'data: {"a":1}', "", ": comment", "id: e:1-0",
             "event: LISTING_UPDATE", "data: {", "data: }", ""]
    messages = [m for m in (parser.feed(line + "\n") for line in lines) if m is not None]
    assert [(m.event, m.id, m.data) for m in messages] == [("connected", None, '{"a":1}'),
                                                           ("LISTING_UPDATE", "e:1-0", "{\n}")]
    assert event_line({"timestamp": "T", "type": "X", "id": "1-0", "payload": {"id": "p", "action": "a"}}) \
        == "T X 1-0 a:p {}"
