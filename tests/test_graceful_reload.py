"""A deploy by gunicorn's graceful reload (SIGHUP to the master): the listening socket never closes.

New workers (with the new code: the app is not preloaded) start on the master's socket before
the old ones are told to stop; the old ones close their streams at once, and every dashboard
resumes on a new worker with its Last-Event-ID. No connect is refused at any point.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import requests

from tests.sse_client import SSEClient
from tests.test_resume_storm import CLIENTS, KEY, Dashboard, publish_steadily, wait_until_seen
from tests.waiting import eventually


def probe_connects(port: int, stop: threading.Event, refused: list[float]) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        except OSError:
            refused.append(time.time())
        time.sleep(0.01)


def worker_pids(gateway) -> set[int]:
    status = requests.get(gateway.url + "/api/realtime/status", headers=KEY, timeout=5).json()
    return {p["pid"] for p in status["processes"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sighup_reload_hands_every_stream_to_new_workers_without_refusal_or_loss(gateway_factory, bus):
    gateway = gateway_factory(forked=False, SSE_DEBOUNCE_WINDOW="0", SSE_RETRY="200", SSE_RETRY_SPREAD="300")
    url = gateway.url + "/api/realtime/events?channels=inventory"
    stop_clients, stop_publishing, stop_probe = threading.Event(), threading.Event(), threading.Event()
    dashboards = [Dashboard(url, stop_clients) for _ in range(CLIENTS // 3)]
    refused: list[float] = []
    for d in dashboards:
        d.start()
    try:
        for d in dashboards:
            assert d.connected.wait(60)
        old_pids = worker_pids(gateway)
        old_processes = {d.process for d in dashboards}
        published: list[str] = []
        threading.Thread(target=publish_steadily, args=(bus, stop_publishing, published), daemon=True).start()
        probe = threading.Thread(target=probe_connects, args=(gateway.port, stop_probe, refused), daemon=True)
        probe.start()
        time.sleep(1)
        connects_before = sum(d.connects for d in dashboards)
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGHUP)
        eventually(lambda: sum(d.connects for d in dashboards) >= connects_before + len(dashboards), timeout=60,
                   interval=0.2, what="every stream handed over")
        time.sleep(1)
        stop_publishing.set()
        stop_probe.set()
        probe.join(5)
        wanted = set(published)
        wait_until_seen(dashboards, wanted, timeout=30)
        assert not refused, f"{len(refused)} connects refused during the reload"
        assert not any(d.refusals for d in dashboards), "a stream was answered with an error status"
        assert sum(d.resets for d in dashboards) == 0
        assert sum(len(wanted - set(d.seen)) for d in dashboards) == 0
        old_ids = {p for p in old_processes}
        assert not {d.process for d in dashboards} & old_ids, "a stream was served by the old worker"
        eventually(lambda: not any(alive(pid) for pid in old_pids), timeout=10, interval=0.2,
                   what="the old worker to exit")
    finally:
        stop_clients.set()
        stop_publishing.set()
        stop_probe.set()
        for d in dashboards:
            d.join(15)


def read_until_closed(stream: SSEClient, timeout: float) -> float:
    """Read until the server closes the stream; when it did."""
    deadline = time.time() + timeout
    while True:
        try:
            stream.next(max(0.01, deadline - time.time()))
        except EOFError:
            return time.time()


def test_an_old_worker_serves_until_its_successor_accepts(gateway_factory):
    """The new worker is held (SIGSTOP) before it could accept: until it runs again, the old worker
    keeps its streams and answers new ones, so no connect waits in the queue with nobody accepting."""
    from tests.topology.procs import children

    gateway = gateway_factory(forked=False, SSE_HEARTBEAT_INTERVAL="300", SSE_RETRY="200", SSE_RETRY_SPREAD="0")
    url = gateway.url + "/api/realtime/events?channels=orders"
    assert gateway.proc is not None
    master = gateway.proc.pid
    old_workers = set(children(master))
    with SSEClient(url, KEY) as early:
        old_process = early.next(10).json["processId"]
        gateway.proc.send_signal(signal.SIGHUP)
        new_worker = eventually(lambda: next(iter(set(children(master)) - old_workers), None), timeout=10,
                                interval=0.002, what="the new worker")
        os.kill(new_worker, signal.SIGSTOP)  # as if its imports took long
        try:
            time.sleep(1.5)
            assert early.next(2).event == "heartbeat"  # the old worker's stream is still open
            started = time.time()
            with SSEClient(url, KEY, timeout=5) as late:
                connected = late.next(3)
                assert connected.event == "connected" and connected.json["processId"] == old_process
                assert time.time() - started < 3  # answered, not queued behind the held worker
        finally:
            os.kill(new_worker, signal.SIGCONT)
        read_until_closed(early, timeout=20)  # handed over once the new worker accepts
    with SSEClient(url, KEY) as after:
        assert after.next(10).json["processId"] != old_process
    eventually(lambda: not any(alive(pid) for pid in old_workers), timeout=15, interval=0.2,
               what="the old worker to exit")
