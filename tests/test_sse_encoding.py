"""The pure SSE encoder and message builders."""

import json

import pytest

from gateway import messages, sse, stream_ids
from gateway.frames import FrameCache


def test_encode_puts_retry_id_event_then_data():
    assert sse.encode("x", event="ping", id="5-0", retry=3000) == b"retry: 3000\nid: 5-0\nevent: ping\ndata: x\n\n"


def test_multiline_data_becomes_several_data_lines():
    assert sse.encode("a\nb\r\nc") == b"data: a\ndata: b\ndata: c\n\n"


def test_newline_in_id_or_event_is_refused():
    with pytest.raises(ValueError, match="id"):
        sse.encode("x", id="1\n2")
    with pytest.raises(ValueError, match="event"):
        sse.encode("x", event="a\nb")


def test_chunk_frames_bytes_for_http_1_1():
    assert sse.chunk(b"hello") == b"5\r\nhello\r\n"


def test_batch_data_splices_events_and_marks_truncation():
    data = messages.batch_data("PRICE_CHANGE", ['{"id":"1-0"}', '{"id":"1-1"}'], 5)
    assert json.loads(data) == {"type": "PRICE_CHANGE", "count": 5, "events": [{"id": "1-0"}, {"id": "1-1"}],
                                "truncated": True}
    assert "truncated" not in json.loads(messages.batch_data("PRICE_CHANGE", ['{"id":"1-0"}'], 1))


def test_frames_are_encoded_once_per_type_set():
    calls = []

    def build(types):
        calls.append(types)
        return b"data: x\n\n"

    frames = FrameCache(build)
    a, b = frozenset({"A"}), frozenset({"A", "B"})
    for _ in range(3):
        frames.for_key((a, True))
        frames.for_key((a, False))
        frames.for_key((b, True))
    assert calls == [a, b]
    assert frames.for_key((a, True)) == sse.chunk(b"data: x\n\n")


@pytest.mark.parametrize("text", ["", "1", "1-", "-1", "a-1", "1-2-3", "99999999999999999999999-0"])
def test_bad_stream_ids_are_refused(text):
    with pytest.raises(ValueError):
        stream_ids.parse(text)


def test_predecessor_steps_back_across_milliseconds():
    assert stream_ids.predecessor((5, 2)) == (5, 1)
    assert stream_ids.predecessor((5, 0)) == (4, 2**64 - 1)
    assert stream_ids.predecessor((0, 0)) == (0, 0)
