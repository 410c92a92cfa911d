"""Background loops of a gateway process, kept running: a bug in one pass must not stop them for good."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import redis

log = logging.getLogger(__name__)


def supervise(loop: Callable[[], None]) -> None:
    """Run ``loop`` for ever, restarting it a second after it fails."""
    while True:
        try:
            loop()
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("%s failed; restarting it in 1 s", getattr(loop, "__name__", loop))
            gevent.sleep(1)


def every(interval_s: float, job: Callable[[], None]) -> Callable[[], None]:
    """A loop that runs ``job`` now and then every ``interval_s``; a Redis error skips one pass."""

    def run_every() -> None:
        while True:
            try:
                job()
            except redis.RedisError as exc:
                log.debug("%s skipped: %s", getattr(job, "__name__", job), exc)
            gevent.sleep(interval_s)

    run_every.__name__ = f"every {interval_s:g} s: {getattr(job, '__name__', job)}"
    return run_every


def spawn_supervised(loops: list[Callable[[], None]]) -> list[gevent.Greenlet]:
    return [gevent.spawn(supervise, loop) for loop in loops]
