"""Noticing a Redis that came back without entries we read (a failover that lost writes).

A replica promoted by Sentinel has what was replicated to it, which may lack the last
events the old primary took. A gateway that read those events knows their ids: if the
history no longer holds the last one it read (or ends before it), events were lost, and
every cursor handed out from that history may point past a gap. Rotating the epoch turns
each such resume into a ``reset`` instead of a silent gap.
"""

from __future__ import annotations

import redis

from gateway import stream_ids
from gateway.history import StreamInfo
from gateway.stream_ids import ZERO, StreamId
from shared.constants import HISTORY_EPOCH, HISTORY_STREAM
from shared.event_bus import new_epoch

# Replace the epoch only if it is still the one we knew (another gateway may have rotated it).
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
"""


def lost_entries(client: redis.Redis, read_up_to: StreamId, info: StreamInfo) -> bool:
    """True when the history lacks the entry at ``read_up_to``, which this gateway read."""
    if read_up_to == ZERO:
        return False
    if info.last_generated < read_up_to:
        return True
    if info.first_entry is None or read_up_to < info.first_entry:
        return False  # trimmed away (age or length): a resume from before it is reset anyway
    position = stream_ids.format(read_up_to)
    return not client.xrange(HISTORY_STREAM, min=position, max=position, count=1)


def rotate_epoch(client: redis.Redis, known: str) -> str:
    """A new epoch for the history, unless another process already replaced ``known``."""
    value = client.eval(_ROTATE, 1, HISTORY_EPOCH, known, new_epoch())
    return value.decode() if isinstance(value, bytes) else str(value)
