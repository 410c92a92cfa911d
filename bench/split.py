"""``python -m bench.split``: many idle streams on one host with several gunicorn workers.

    flock /tmp/rakuda-heavy.lock python -m bench.split --streams 30000 --workers 2

Opens the streams in one burst, holds them over 2.5 heartbeats, and prints one table row:
streams held, per-worker share (from each worker's open fds and its own count of streams),
KB per stream, heartbeats received against expected, and the largest heartbeat gap.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import requests

from bench import procstat
from bench.loadclient import LoadClient, raise_nofile
from bench.systems import API_KEY, Gateway, PrivateRedis


class GatewayWorkers(Gateway):
    """The gateway with WEB_CONCURRENCY workers (the plain one runs one)."""

    def __init__(self, redis_url: str, heartbeat_ms: int, workers: int, max_per_worker: int) -> None:
        super().__init__(redis_url, heartbeat_ms)
        self.workers = workers
        self.max_per_worker = max_per_worker

    def command(self) -> list[str]:  # over the WEB_CONCURRENCY=1 that System.start sets
        return ["env", f"WEB_CONCURRENCY={self.workers}", f"SSE_MAX_CONNECTIONS={self.max_per_worker}",
                *super().command()]

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return [p for p in procstat.children(self.proc.pid) if p != self.proc.pid]


def run(streams: int, workers: int, heartbeat_ms: int, clients: int, max_per_worker: int) -> dict:
    raise_nofile()
    redis = PrivateRedis().start()
    system = GatewayWorkers(redis.url, heartbeat_ms, workers, max_per_worker)
    lc = LoadClient(clients)
    try:
        system.start()
        time.sleep(1.0)
        pids = _gunicorn_workers(system)
        base_rss = {p: procstat.rss_kb(p) for p in pids}
        base_fds = {p: procstat.open_fds(p) for p in pids}
        # One loopback source address per load process: one address has 28k ephemeral ports only.
        opened = lc.connect("127.0.0.1", system.port, system.stream_path, system.stream_headers(), streams,
                            timeout=max(60.0, streams / 150),
                            sources=[f"127.0.0.{2 + i}" for i in range(clients)])
        time.sleep(2.0)
        lc.mark(lazy=0.05)
        hold = 2.5 * heartbeat_ms / 1000
        time.sleep(hold)
        totals = lc.totals()
        status = requests.get(f"http://127.0.0.1:{system.port}/api/realtime/status",
                              headers={"X-API-Key": API_KEY}, timeout=30).json()
        per_worker = sorted(p["activeConnections"] for p in status["processes"])
        fds = sorted(procstat.open_fds(p) - base_fds[p] for p in pids)
        rss_growth = sum(procstat.rss_kb(p) - base_rss[p] for p in pids)
        row = {
            "streams": streams, "workers": workers, "opened": opened["ok"], "failed": opened["failed"],
            "connect_s": round(opened["seconds"], 1), "per_worker_streams": per_worker, "per_worker_fds": fds,
            "split_max_over_min": round(max(per_worker) / max(1, min(per_worker)), 3),
            "kb_per_stream": round(rss_growth / max(1, totals.open), 1),
            "heartbeats": totals.heartbeats,
            "heartbeats_expected": int(totals.open * (hold * 1000 // heartbeat_ms)),
            "heartbeat_max_gap_ms": round(totals.hb_gap_ms), "load1": round(os.getloadavg()[0], 2),
        }
        lc.close_all()
        return row
    finally:
        lc.stop()
        system.stop()
        redis.stop()


def _gunicorn_workers(system: GatewayWorkers) -> list[int]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = system.worker_pids()
        if len(pids) >= system.workers:
            return pids
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start its workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.split", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=30000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heartbeat-ms", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4, help="load client processes (20,000 fds each at most)")
    parser.add_argument("--max-per-worker", type=int, default=18000, help="SSE_MAX_CONNECTIONS")
    args = parser.parse_args(argv)
    row = run(args.streams, args.workers, args.heartbeat_ms, args.clients, args.max_per_worker)
    print("| streams | workers | opened | per worker (streams) | per worker (fds) | max/min | KB/stream "
          "| heartbeats got/expected | max gap ms | load1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    streams_split, fds_split = (" / ".join(map(str, row[k])) for k in ("per_worker_streams", "per_worker_fds"))
    print(f"| {row['streams']:,} | {row['workers']} | {row['opened']:,} | {streams_split} "
          f"| {fds_split} | {row['split_max_over_min']} | {row['kb_per_stream']} "
          f"| {row['heartbeats']}/{row['heartbeats_expected']} | {row['heartbeat_max_gap_ms']} | {row['load1']} |")
    print(row, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
