"""RAKUDA_ENV=production refuses weak secrets in every process; tokens are never signed with the keys."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.config import Settings
from shared.production import production_problem
from tests.servers import GatewayServer, procfile_command
from tests.sse_client import SSEClient

ROOT = Path(__file__).resolve().parent.parent
STRONG_SECRET = "s" * 48
STRONG_KEY = "k" * 32


def prod(**env: str) -> dict[str, str]:
    return {"RAKUDA_ENV": "production", "SECRET_KEY": STRONG_SECRET, "API_KEYS": STRONG_KEY,
            "ADMIN_API_KEYS": "a" * 32, **env}


@pytest.mark.parametrize(("env", "named"), [
    (prod(SECRET_KEY=""), "SECRET_KEY"),
    (prod(SECRET_KEY="short"), "SECRET_KEY"),
    (prod(API_KEYS="dev-key"), "API_KEYS"),
    (prod(API_KEYS=f"{STRONG_KEY},tooshort"), "API_KEYS"),
    (prod(API_KEYS=""), "API_KEYS"),
])
def test_production_names_the_weak_setting(env, named):
    problem = production_problem(Settings.from_env(env))
    assert problem is not None and named in problem and "\n" not in problem


def test_development_and_strong_production_settings_pass():
    assert production_problem(Settings.from_env({"API_KEYS": "dev-key"})) is None
    assert production_problem(Settings.from_env(prod())) is None


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [re.sub(r"\$\{[A-Z_]+:-(\w+)\}", r"\1", arg) for arg in command]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("process", ["web", "worker", "beat", "cli"])
def test_every_process_refuses_to_start_in_production_with_a_dev_key(process, redis_url):
    env = prod(API_KEYS="dev-key", REDIS_URL=redis_url, PORT="0")
    command = ([str(Path(sys.executable).with_name("rakuda")), "outbox", "relay"] if process == "cli"
               else procfile_command(process))
    result = _run(command, env)
    assert result.returncode != 0
    lines = [line for line in (result.stderr + result.stdout).splitlines() if "refusing to start" in line]
    assert len(lines) == 1 and "API_KEYS" in lines[0] and "dev-key" not in lines[0]


def test_a_strong_production_gateway_starts(settings):
    env = {**settings.env_items(), **prod()}
    server = GatewayServer(env).start()
    try:
        assert requests.get(server.url + "/api/realtime/status", headers={"X-API-Key": STRONG_KEY},
                            timeout=5).status_code == 200
    finally:
        server.discard()


def test_without_secret_key_tokens_are_shared_by_processes_and_not_derived_from_keys(gateway_factory, settings):
    env = {"SECRET_KEY": ""}
    first, second = gateway_factory(**env), gateway_factory(**env)
    token = requests.post(first.url + "/api/realtime/token", headers=first.headers(), timeout=5).json()["token"]
    # The other process accepts it on the stream: the random secret is shared through Redis.
    stream = SSEClient(second.url + f"/api/realtime/events?token={token}")
    try:
        assert stream.status == 200
    finally:
        stream.close()
    # An attacker holding the token cannot test key guesses offline: the old key-derived secret fails.
    derived = hashlib.sha256(f"rakuda-realtime-token:{settings.api_keys[0]}".encode()).hexdigest()
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer(derived, salt="rakuda-realtime-stream").loads(token)
