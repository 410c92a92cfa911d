"""An event on its way out through the outbox is validated where it is made and encoded to JSON once."""

from __future__ import annotations

import json

import pytest
import redis

from shared.constants import HISTORY_STREAM
from shared.realtime import RealTimeEvent
from tasks.runtime import Runtime


def test_outbox_events_are_encoded_once_and_never_validated_again(
        runtime: Runtime, bus_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [RealTimeEvent.create("PRICE_CHANGE", i, "updated", {"newPrice": f"{i}.00"}) for i in range(1, 6)]
    counts = dict.fromkeys(("to_json", "parse", "model_validate", "model_validate_json"), 0)
    for name in counts:
        original = getattr(RealTimeEvent, name)  # bound to the class for the classmethods
        method = vars(RealTimeEvent).get(name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(RealTimeEvent, name, counted if not isinstance(method, classmethod)
                            else staticmethod(counted))

    with runtime.outbox.transaction() as changes:
        changes.emit(*events)

    assert changes.published == len(events)
    assert counts == {"to_json": len(events), "parse": 0, "model_validate": 0, "model_validate_json": 0}
    published = [json.loads(fields["e"]) for _id, fields in bus_redis.xrange(HISTORY_STREAM)]
    assert [e["payload"]["data"]["newPrice"] for e in published] == [f"{i}.00" for i in range(1, 6)]
    assert all(e["payload"]["data"]["outboxId"] for e in published)
