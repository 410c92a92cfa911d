"""Sharing streams fairly between the gunicorn workers of one host.

All workers accept from one listening socket, so who gets a connection is a race: a burst
can pile onto one worker (up to its SSE_MAX_CONNECTIONS) while another has room. Each
worker publishes its open connections in a slot of a shared memory table (made in the
master, inherited by the forks) and stops accepting while it holds clearly more than the
least-loaded live worker (one that stopped writing its count for a second is left out, so a
stuck worker never stops the others), or is at its limit while another is not: the kernel then hands
new connections to the workers still accepting. The least-loaded worker always accepts,
so a connection is never left waiting for all of them (when every worker is full, they
all accept and answer 503 with Retry-After).
"""

from __future__ import annotations

import mmap
import os
import struct
import time

SLOTS = 64
STALE_S = 1.0  # a worker that has not written its count for this long (blocked, stopped) is left out
# pid, open connections, when written (monotonic ms: one clock per host), then the worker's age
# (gunicorn numbers its workers 1, 2, 3... in the order it makes them) and its state.
_SLOT = struct.Struct("=iiqii")
STARTING, SERVING = 1, 2  # made by the master / importing the app; accepting connections


def should_accept(mine: int, others: list[int], limit: int, slack: int) -> bool:
    """Whether a worker holding ``mine`` connections keeps accepting, given the other live workers'."""
    if not others:
        return True
    least = min(others)
    if mine >= limit:
        return least >= limit  # full: leave new streams to a worker with room, unless none has
    return mine <= least + slack


def slack_for(mine: int) -> int:
    """How far above the least-loaded worker a worker may go: 1 %, at least 16 connections."""
    return max(16, mine // 100)


class LoadTable:
    """Open connections per worker process, in shared memory (create before forking)."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * _SLOT.size)  # anonymous and shared: seen by every fork

    def write(self, slot: int, pid: int, connections: int) -> None:
        """A serving worker's count of open connections (its slot is its age)."""
        self.mark(slot, pid, SERVING, connections)

    def mark(self, age: int, pid: int, state: int, connections: int = 0) -> None:
        _SLOT.pack_into(self._map, (age % self.slots) * _SLOT.size, pid, connections, _now_ms(), age, state)

    def clear(self, slot: int, pid: int) -> None:
        if self.read_slot(slot)[0] == pid:
            self.mark(slot, 0, 0)

    def read_slot(self, slot: int) -> tuple[int, int]:
        pid, count, _written, _age, _state = _SLOT.unpack_from(self._map, (slot % self.slots) * _SLOT.size)
        return pid, count

    def others(self, own_pid: int) -> list[int]:
        """Connections of the other workers that are alive and wrote their count lately."""
        out, fresh_after = [], _now_ms() - int(STALE_S * 1000)
        for slot in range(self.slots):
            pid, count, written, _age, state = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if state == SERVING and pid and pid != own_pid and written >= fresh_after and _alive(pid):
                out.append(count)
        return out

    def younger_starting(self, own_age: int, within_s: float) -> bool:
        """Whether a worker made after ``own_age`` is still starting (made or marked within ``within_s``)."""
        recent_after = _now_ms() - int(within_s * 1000)
        for slot in range(self.slots):
            pid, _count, written, age, state = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if state == STARTING and age > own_age and written >= recent_after and (pid == 0 or _alive(pid)):
                return True
        return False


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
