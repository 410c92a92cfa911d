"""Health probes for orchestrators, and JSON log lines with a request id."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from shared.logs import RakudaJsonFormatter, RequestIdFilter, request_id_var
from tests.servers import free_port, procfile_command
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def test_live_and_ready_answer_200_without_a_key(gateway_factory, migrated):
    server = gateway_factory(DATABASE_URL=migrated.database_url)
    assert requests.get(server.url + "/api/health/live", timeout=5).json() == {"status": "alive"}
    ready = requests.get(server.url + "/api/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"redis": True, "database": True, "streamReader": True}


def test_ready_is_503_naming_what_is_missing(gateway_factory):
    # A Redis port nobody listens on and a database server that is not there.
    server = gateway_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                             DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    # /api/health (what the server starter waits for) answers 200 "degraded"; live stays 200.
    assert requests.get(server.url + "/api/health/live", timeout=5).status_code == 200
    ready = requests.get(server.url + "/api/health/ready", timeout=10)
    assert ready.status_code == 503
    assert set(ready.json()["missing"]) >= {"redis", "database"}


def test_json_logs_from_the_gateway_carry_the_request_id(gateway_factory):
    server = gateway_factory(LOG_FORMAT="json")
    answer = requests.get(server.url + "/api/realtime/status", headers={**server.headers(), "X-Request-ID": "req-42"},
                          timeout=5)
    assert answer.headers["X-Request-ID"] == "req-42"
    own = requests.get(server.url + "/api/health/live", timeout=5).headers["X-Request-ID"]
    assert len(own) == 32  # one made up when none (or a strange one) is sent
    forged = requests.get(server.url + "/api/health/live", headers={"X-Request-ID": '"x": 1, "level": "x"'},
                          timeout=5)
    assert len(forged.headers["X-Request-ID"]) == 32  # only plain ids are kept

    def records() -> list[dict]:
        lines = [line for line in server.read_log().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]  # every line is one JSON object

    def status_access() -> list[dict]:
        return [r for r in records() if r["logger"] == "gunicorn.access" and "/api/realtime/status" in r["message"]]

    access = eventually(status_access, 10, what="the access line of the status request")
    assert access[0]["request_id"] == "req-42"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records())


def test_json_logs_from_a_worker(settings, tmp_path):
    env = {**os.environ, **settings.env_items(), "LOG_FORMAT": "json"}
    # The Procfile's line, with the shell default it leaves to honcho filled in.
    command = [re.sub(r"\$\{[A-Z_]+:-(\w+)\}", r"\1", arg) for arg in procfile_command("worker")]
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: "ready" in log_path.read_text(), 30, interval=0.2, what="the worker's ready line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert any("ready" in r["message"] for r in records), log_path.read_text()[-2000:]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_the_formatter_writes_the_request_id_of_the_current_request():
    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(RakudaJsonFormatter().format(record))
    assert line["message"] == "hello there" and line["request_id"] == "rid-1"
    assert line["level"] == "INFO" and line["logger"] == "gateway.x" and line["time"].endswith("Z")
