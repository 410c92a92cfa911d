"""``RealTimeEvent.create`` checks each field itself: it must refuse what ``parse`` refuses, naming the same field."""

from __future__ import annotations

import pytest

from shared.exceptions import InvalidEventError
from shared.realtime import RealTimeEvent, utc_now_iso


@pytest.mark.parametrize(("args", "field"), [
    (("NOT_A_TYPE", 1, "updated", None), "type"),
    (("PRICE_CHANGE", "", "updated", None), "payload.id"),
    (("PRICE_CHANGE", True, "updated", None), "payload.id"),
    (("PRICE_CHANGE", 1.5, "updated", None), "payload.id"),
    (("PRICE_CHANGE", 1, "archived", None), "payload.action"),
    (("PRICE_CHANGE", 1, "updated", {"price": float("nan")}), "payload.data.price"),
    (("PRICE_CHANGE", 1, "updated", {"price": object()}), "payload.data.price"),
    (("PRICE_CHANGE", 1, "updated", {1: "x"}), "payload.data"),
])
def test_create_refuses_what_parse_refuses_naming_the_same_field(args: tuple, field: str) -> None:
    type_, id_, action, data = args
    payload: dict = {"id": id_, "action": action}
    if data is not None:
        payload["data"] = data
    with pytest.raises(InvalidEventError) as by_parse:
        RealTimeEvent.parse({"type": type_, "payload": payload})
    with pytest.raises(InvalidEventError) as by_create:
        RealTimeEvent.create(type_, id_, action, data)
    assert by_create.value.field == by_parse.value.field == field


def test_created_event_equals_its_json_parsed_back() -> None:
    event = RealTimeEvent.create("PRICE_CHANGE", 7, "updated", {"oldPrice": None, "newPrice": "1.00", "n": [1, 2.5]})
    assert RealTimeEvent.parse(event.to_json()) == event
    assert RealTimeEvent.parse(event.to_json({"outboxId": 3})).payload.data == {**event.payload.data, "outboxId": 3}


def test_a_given_timestamp_is_kept_and_a_non_utc_one_refused() -> None:
    now = utc_now_iso()
    assert RealTimeEvent.create("PRICE_CHANGE", 1, "updated", None, now).timestamp == now
    with pytest.raises(InvalidEventError) as caught:
        RealTimeEvent.create("PRICE_CHANGE", 1, "updated", None, "2026-01-01T00:00:00+01:00")
    assert caught.value.field == "timestamp"


def test_now_as_a_timestamp_is_the_current_millisecond_even_when_asked_for_many_times_in_one() -> None:
    from shared.timestamps import utc_iso

    for _ in range(2000):
        before = utc_iso()
        now = utc_now_iso()
        after = utc_iso()
        assert before <= now <= after and now.endswith("Z") and len(now) == len("2026-11-28T10:00:00.123Z")
