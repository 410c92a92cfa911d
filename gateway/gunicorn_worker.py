"""gunicorn's gevent worker, sharing new connections fairly with its siblings (gateway.accept_balance)."""

from __future__ import annotations

import os
from typing import Any

import gevent
from gevent.server import StreamServer
from gunicorn.workers import ggevent

from gateway.accept_balance import LoadTable, should_accept, slack_for

CHECK_INTERVAL_S = 0.01
# Made when gunicorn's master imports this class, before it forks the workers.
LOAD = LoadTable()


# gunicorn ships no type information, so its worker class is Any to the type checker.
class BalancedGeventWorker(ggevent.GeventWorker):  # type: ignore[misc]
    def run(self) -> None:
        servers: list[StreamServer] = []

        class RecordedServer(StreamServer):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                servers.append(self)

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
