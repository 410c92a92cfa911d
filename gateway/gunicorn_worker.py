"""gunicorn's gevent worker: new connections shared fairly with its siblings (gateway.accept_balance),
and a graceful reload in which some worker is always accepting.

The handover. On SIGHUP gunicorn's master makes the new workers and at once sends SIGTERM to
the old ones, while the new ones are still importing the app (a second or more under load).
A worker told to stop while a younger sibling is still starting keeps serving (its streams,
its accept loop) until that sibling is accepting, then stops as any worker does: it stops
accepting and closes its streams, whose dashboards reconnect to a worker that is ready. The
wait is bounded (``HANDOVER_LIMIT_S``); a second SIGTERM, or a master that is stopping
(no sibling starting), stops it at once.
"""

from __future__ import annotations

import os
import time
from types import FrameType
from typing import Any

import gevent
from gevent.server import StreamServer
from gunicorn.workers import ggevent

from gateway.accept_balance import SERVING, STARTING, LoadTable, should_accept, slack_for

CHECK_INTERVAL_S = 0.01
HANDOVER_LIMIT_S = 10.0  # the longest an old worker waits for its successor to accept
# Made when gunicorn's master imports this class, before it forks the workers.
LOAD = LoadTable()


# gunicorn ships no type information, so its worker class is Any to the type checker.
class BalancedGeventWorker(ggevent.GeventWorker):  # type: ignore[misc]
    alive: bool  # gunicorn's: False once the worker is to stop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # in the master, before the fork
        LOAD.mark(self.age, 0, STARTING)
        self._handing_over = False

    def init_process(self) -> None:
        LOAD.mark(self.age, os.getpid(), STARTING)
        super().init_process()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.alive and not self._handing_over and LOAD.younger_starting(self.age, HANDOVER_LIMIT_S):
            self._handing_over = True
            gevent.spawn(self._stop_once_succeeded)  # not in the signal handler: it waits
        else:
            super().handle_exit(sig, frame)

    def _stop_once_succeeded(self) -> None:
        deadline = time.monotonic() + HANDOVER_LIMIT_S
        while self.alive and time.monotonic() < deadline and LOAD.younger_starting(self.age, HANDOVER_LIMIT_S):
            gevent.sleep(CHECK_INTERVAL_S)
        self.alive = False

    def run(self) -> None:
        servers: list[StreamServer] = []

        class RecordedServer(StreamServer):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                servers.append(self)

            def start_accepting(self) -> None:
                super().start_accepting()
                LOAD.mark(worker.age, os.getpid(), SERVING, len(self.pool) if self.pool is not None else 0)

        worker = self
        # This process only (a forked worker): the parent's servers are made with our class.
        ggevent.StreamServer = RecordedServer
        if self.cfg.workers > 1:
            gevent.spawn(self._balance, servers)
        try:
            super().run()
        finally:
            LOAD.clear(self.age, os.getpid())

    def _balance(self, servers: list[StreamServer]) -> None:
        pid = os.getpid()
        limit = int(os.environ.get("SSE_MAX_CONNECTIONS", "18000"))
        accepting = True
        while self.alive:
            gevent.sleep(CHECK_INTERVAL_S)
            mine = sum(len(s.pool) for s in servers if s.pool is not None)
            LOAD.write(self.age, pid, mine)
            wanted = should_accept(mine, LOAD.others(pid), limit, slack_for(mine))
            if wanted != accepting:
                for server in servers:
                    if not server.started or server.closed:
                        continue
                    if wanted:
                        server.start_accepting()
                    else:
                        server.stop_accepting()
                accepting = wanted
