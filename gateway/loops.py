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


def every(interval_s: float, *jobs: Callable[[], None]) -> Callable[[], None]:
    """A loop that runs ``jobs`` one after another now and then every ``interval_s``.

    One after another, so the loop holds at most one Redis connection at a time, whatever the
    number of jobs. A Redis error skips that job for one pass; any other error is logged and
    skips it too: neither keeps the jobs after it from running.
    """

    def run_every() -> None:
        while True:
            for job in jobs:
                try:
                    job()
                except redis.RedisError as exc:
                    log.debug("%s skipped: %s", _name(job), exc)
                except Exception:
                    log.exception("%s failed; trying it again in %g s", _name(job), interval_s)
            gevent.sleep(interval_s)

    run_every.__name__ = f"every {interval_s:g} s: {', '.join(_name(job) for job in jobs)}"
    return run_every


def _name(job: Callable[[], None]) -> str:
    return str(getattr(job, "__name__", job))


def spawn_supervised(loops: list[Callable[[], None]]) -> list[gevent.Greenlet]:
    return [gevent.spawn(supervise, loop) for loop in loops]
