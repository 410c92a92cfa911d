"""The upkeep loop: its jobs run one after another, and one that fails does not stop the others."""

from __future__ import annotations

import gevent
import redis

from gateway.loops import every, spawn_supervised


def test_jobs_run_one_after_another_so_the_loop_holds_one_redis_connection_at_a_time():
    running: list[str] = []
    most_at_once = 0
    passes: list[str] = []

    def job(name: str):
        def run() -> None:
            nonlocal most_at_once
            running.append(name)
            most_at_once = max(most_at_once, len(running))
            gevent.sleep(0.01)  # a round trip: another greenlet could run here
            running.remove(name)
            passes.append(name)

        return run

    [loop] = spawn_supervised([every(0.02, job("report"), job("blocked"), job("leases"), job("counts"))])
    try:
        gevent.sleep(0.2)
    finally:
        loop.kill()
    assert most_at_once == 1
    assert passes[:8] == ["report", "blocked", "leases", "counts"] * 2


def test_a_job_that_fails_skips_its_turn_and_the_jobs_after_it_still_run():
    done: list[str] = []
    errors = iter([redis.ConnectionError("down"), ValueError("a bug")] * 10)

    def failing() -> None:
        done.append("failing")
        raise next(errors)

    def renew() -> None:
        done.append("renew")

    [loop] = spawn_supervised([every(0.01, failing, renew)])
    try:
        gevent.sleep(0.1)
    finally:
        loop.kill()
    assert done[:6] == ["failing", "renew"] * 3
