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
_SLOT = struct.Struct("=iiq")  # pid, open connections, when written (monotonic ms: one clock per host)


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
        _SLOT.pack_into(self._map, (slot % self.slots) * _SLOT.size, pid, connections, _now_ms())

    def clear(self, slot: int, pid: int) -> None:
        if self.read_slot(slot)[0] == pid:
            self.write(slot, 0, 0)

    def read_slot(self, slot: int) -> tuple[int, int]:
        pid, count, _written = _SLOT.unpack_from(self._map, (slot % self.slots) * _SLOT.size)
        return pid, count

    def others(self, own_pid: int) -> list[int]:
        """Connections of the other workers that are alive and wrote their count lately."""
        out, fresh_after = [], _now_ms() - int(STALE_S * 1000)
        for slot in range(self.slots):
            pid, count, written = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if pid and pid != own_pid and written >= fresh_after and _alive(pid):
                out.append(count)
        return out


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
