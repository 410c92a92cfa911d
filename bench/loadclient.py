"""The load client: N SSE streams over raw non-blocking sockets, spread over several processes.

Each process (``bench.loadworker``) runs one epoll loop and takes commands over a pipe.

Process 0 is the probe: it holds PROBE_SHARE of the streams and always reads at once, and
only its reads go into the latency histogram. The other processes may be ``lazy``: they
sleep between polls so that each read takes many messages at once. The server writes to
every stream all the same (the kernel buffers the difference), so the probe's latencies
are the server's, while the client as a whole stays cheap enough not to be what is measured
on a 2-core machine (reading 100k messages/s one read each would take a core of its own).
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.loadworker import PROBE_SHARE, raise_nofile, worker_main

__all__ = ["LoadClient", "Totals", "raise_nofile"]


def _shares(n: int, processes: int) -> list[int]:
    """Streams per process: PROBE_SHARE for the probe (process 0), the rest spread evenly."""
    if processes == 1:
        return [n]
    probe = max(1, round(n * PROBE_SHARE)) if n else 0
    rest = n - probe
    others = processes - 1
    return [probe] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


@dataclass
class Totals:
    """The merged figures of all client processes since the last ``mark()``."""

    open: int = 0
    live: int = 0
    messages: int = 0
    heartbeats: int = 0
    events: int = 0
    announced: int = 0
    bytes: int = 0
    reads: int = 0
    closed: int = 0
    first_ms: float | None = None
    last_ms: float | None = None
    hb_gap_ms: float = 0.0
    per_client_min: int = 0
    per_client_max: int = 0
    cpu_s: float = 0.0
    hist: Counter = field(default_factory=Counter)

    def percentile(self, q: float) -> float | None:
        """Latency in ms at quantile ``q`` (0..1), from the 0.1 ms buckets."""
        total = sum(self.hist.values())
        if not total:
            return None
        rank, seen = q * total, 0
        for bucket in sorted(self.hist):
            seen += self.hist[bucket]
            if seen >= rank:
                return bucket / 10
        return max(self.hist) / 10

    @property
    def max_latency_ms(self) -> float | None:
        return max(self.hist) / 10 if self.hist else None


class LoadClient:
    """Client processes, each holding part of the streams; every call waits for all of them."""

    def __init__(self, processes: int) -> None:
        raise_nofile()
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(processes):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(theirs,), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)

    def _ask(self, name: str, args: Any = None, timeout: float = 30.0) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((name, args))
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError(f"load client process did not answer {name!r} within {timeout:g}s")
            answers.append(pipe.recv())
        return answers

    def connect(self, host: str, port: int, path: str, headers: dict[str, str], n: int,
                timeout: float = 120.0, wait_headers: bool = True,
                sources: list[str] | None = None) -> dict[str, Any]:
        """Open ``n`` more streams; returns ok / failed (by reason) / seconds.

        A stream counts as open once its 200 headers arrived, or (``wait_headers=False``, for
        servers that send nothing before the first message) once its request is sent.
        """
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        share = _shares(n, len(self.pipes))
        for i, (pipe, count) in enumerate(zip(self.pipes, share, strict=True)):
            source = (sources[i % len(sources)],) if sources else ()
            pipe.send(("connect", (host, port, request, count, timeout, wait_headers, *source)))
        ok, failed, seconds = 0, Counter(), 0.0
        for pipe in self.pipes:
            if not pipe.poll(timeout + 30):
                raise TimeoutError("load client process did not finish connecting")
            answer = pipe.recv()
            ok += answer["ok"]
            failed.update(answer["failed"])
            seconds = max(seconds, answer["seconds"])
        return {"ok": ok, "failed": dict(failed), "seconds": seconds}

    def mark(self, lazy: float = 0.0) -> None:
        """Start counting from now; the non-probe processes sleep ``lazy`` seconds between polls."""
        for i, pipe in enumerate(self.pipes):
            pipe.send(("mark", (0.0, True) if i == 0 else (lazy, lazy == 0)))
        for pipe in self.pipes:
            if not pipe.poll(30):
                raise TimeoutError("load client process did not answer 'mark'")
            pipe.recv()

    def totals(self) -> Totals:
        t = Totals()
        first, last, lows = [], [], []
        for st in self._ask("stats"):
            for name in ("open", "live", "messages", "heartbeats", "events", "announced", "bytes", "reads",
                         "closed", "cpu_s"):
                setattr(t, name, getattr(t, name) + st[name])
            t.hb_gap_ms = max(t.hb_gap_ms, st["hb_gap_ms"])
            t.hist.update(st["hist"])
            if st["first_ms"] is not None:
                first.append(st["first_ms"])
                last.append(st["last_ms"])
            lo, hi, _sum = st["per_client"]
            if st["live"]:
                lows.append(lo)
                t.per_client_max = max(t.per_client_max, hi)
        t.per_client_min = min(lows) if lows else 0
        t.first_ms = min(first) if first else None
        t.last_ms = max(last) if last else None
        return t

    def close_all(self) -> int:
        return sum(self._ask("close"))

    def stop(self) -> None:
        try:
            self._ask("exit", timeout=10)
        except (TimeoutError, OSError, EOFError):
            pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
