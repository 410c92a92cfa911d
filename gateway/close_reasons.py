"""Why a stream ended, as a value: what the tallies count and the Prometheus drop reasons follow from it."""

from __future__ import annotations

from enum import Enum

from gateway.totals import DropReason


class CloseReason(Enum):
    """Why a stream ended; ``drop`` is the drop it counts as (None when the client left by itself)."""

    CLIENT_CLOSED = "client closed"  # the peer hung up
    STREAM_ENDED = "stream ended"  # the request ended (gunicorn closed the response)
    GONE = "gone"  # the socket failed under a read or write
    BUFFER_FULL = "slow: buffer full"
    BUFFER_FULL_IN_REPLAY = "slow: buffer full during replay"
    SEND_TIMEOUT = "slow: no write within SSE_SEND_TIMEOUT"
    SERVER_STOPPING = "server stopping"

    @property
    def slow(self) -> bool:
        """The client did not keep up: it is dropped so that it never delays the others."""
        return self in (CloseReason.BUFFER_FULL, CloseReason.BUFFER_FULL_IN_REPLAY, CloseReason.SEND_TIMEOUT)

    @property
    def drop(self) -> DropReason | None:
        return _DROPS.get(self)


_DROPS = {
    CloseReason.BUFFER_FULL: DropReason.SLOW,
    CloseReason.BUFFER_FULL_IN_REPLAY: DropReason.SLOW,
    CloseReason.SEND_TIMEOUT: DropReason.SEND_TIMEOUT,
    CloseReason.SERVER_STOPPING: DropReason.SHUTDOWN,
}
