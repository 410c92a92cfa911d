"""New streams shared fairly between gunicorn workers, and a full worker leaving them to one with room."""

from __future__ import annotations

import collections
import os
import signal
import time

import pytest

from gateway.accept_balance import SERVING, STALE_S, STARTING, LoadTable, should_accept, slack_for
from tests.sse_client import SSEClient

KEY = {"X-API-Key": "test-key"}


def test_the_least_loaded_worker_always_accepts():
    assert should_accept(100, [100, 300], limit=1000, slack=16)
    assert should_accept(0, [], limit=1000, slack=16)


def test_a_worker_clearly_above_the_least_loaded_stops_accepting():
    assert not should_accept(200, [100], limit=1000, slack=16)
    assert should_accept(116, [100], limit=1000, slack=16)


def test_a_full_worker_leaves_streams_to_one_with_room_unless_all_are_full():
    assert not should_accept(1000, [999], limit=1000, slack=16)
    assert should_accept(1000, [1000, 1200], limit=1000, slack=16)


def test_slack_is_one_percent_at_least_16():
    assert slack_for(0) == 16 and slack_for(15000) == 150


def test_load_table_is_shared_with_a_fork_and_skips_dead_workers():
    table = LoadTable(slots=4)
    child = os.fork()
    if child == 0:
        table.write(1, os.getpid(), 42)
        os._exit(0)
    os.waitpid(child, 0)
    assert table.read_slot(1) == (child, 42)
    assert table.others(os.getpid()) == []  # that worker is gone
    table.write(2, os.getppid(), 7)  # a live process
    assert table.others(os.getpid()) == [7]
    time.sleep(STALE_S + 0.2)
    assert table.others(os.getpid()) == []  # ...that stopped writing its count


def test_a_younger_worker_still_starting_is_seen_until_it_serves_dies_or_is_too_old():
    table = LoadTable(slots=8)
    assert not table.younger_starting(3, within_s=10)
    table.mark(2, os.getppid(), STARTING)  # older than worker 3: not its successor
    assert not table.younger_starting(3, within_s=10)
    table.mark(4, 0, STARTING)  # made by the master, not forked yet
    assert table.younger_starting(3, within_s=10)
    table.mark(4, os.getppid(), STARTING)  # forked, importing
    assert table.younger_starting(3, within_s=10)
    assert table.others(os.getpid()) == []  # a starting worker takes no part in the balance
    table.mark(4, os.getppid(), SERVING)
    assert not table.younger_starting(3, within_s=10)
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    table.mark(5, child, STARTING)  # died while starting
    assert not table.younger_starting(3, within_s=10)
    table.mark(6, 0, STARTING)
    time.sleep(0.15)
    assert not table.younger_starting(3, within_s=0.1)  # a mark older than the wait is not waited for


def open_streams(gateway, n: int) -> list[SSEClient]:
    out = []
    for _ in range(n):
        client = SSEClient(gateway.url + "/api/realtime/events", KEY, timeout=10)
        assert client.status == 200, client.body()
        out.append(client)
    return out


@pytest.mark.slow
def test_a_skewed_start_is_evened_out_and_a_full_worker_hands_streams_on(gateway_factory):
    """One worker is stalled while 200 streams arrive, so the other takes them all; the next 380
    go mostly to the stalled one once it runs again, and none meets a full worker's 503."""
    from tests.topology.procs import children

    gateway = gateway_factory(workers=2, SSE_MAX_CONNECTIONS="300", SSE_HEARTBEAT_INTERVAL="5000")
    workers = children(gateway.proc.pid)
    assert len(workers) == 2
    clients: list[SSEClient] = []
    try:
        time.sleep(0.5)
        os.kill(workers[1], signal.SIGSTOP)
        try:
            time.sleep(STALE_S + 0.5)
            clients += open_streams(gateway, 200)
        finally:
            os.kill(workers[1], signal.SIGCONT)
        time.sleep(0.5)
        clients += open_streams(gateway, 380)
        per_process = collections.Counter(c.next(10).json["processId"].split(":")[1] for c in clients)
    finally:
        for c in clients:
            c.close()
    assert sorted(per_process.values()) == [290, 290] or abs(per_process[str(workers[0])]
                                                           - per_process[str(workers[1])]) <= 40, per_process
