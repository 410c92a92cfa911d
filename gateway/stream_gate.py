"""May this process take one more stream? The checks before a stream starts, each refusal naming why."""

from __future__ import annotations

import logging

import redis

from gateway.errors import HttpError
from gateway.hub import Hub
from gateway.stream_limits import Place, StreamLimits
from gateway.totals import DropReason

log = logging.getLogger(__name__)


def take_place(hub: Hub, limits: StreamLimits, key_fingerprint: str, address: str) -> Place | None:
    """The stream's place in its key's and address's counts (None: Redis could not count it); 503/429 if refused."""
    if hub.stopped:  # accepted just before this worker stopped accepting: the next try lands elsewhere
        raise HttpError(503, "this gateway process is shutting down", headers={"Retry-After": "0"})
    try:
        hub.reader.ensure_position()
    except redis.RedisError as exc:
        log.warning("stream refused: Redis unreachable (%s)", exc)
        raise HttpError(503, "Redis is unreachable, try again shortly", headers={"Retry-After": "2"}) from None
    # The key's and the address's counts are checked (and a place taken) in one Redis script.
    place = limits.acquire(key_fingerprint, address)
    # Checked after the last Redis call before the stream starts: nothing yields between here and
    # the registration in StreamSession.run, so concurrent connects cannot slip past the limit.
    maximum = hub.settings.max_connections
    if len(hub.registry) >= maximum:
        limits.release(place)
        hub.tallies.drops[DropReason.LIMIT] += 1
        raise HttpError(503, f"this process holds its maximum of {maximum} streams", headers={"Retry-After": "5"})
    return place
