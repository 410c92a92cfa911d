"""The hub's fan-out, without sockets: one encoding per set of channels, one write per client."""

from __future__ import annotations

import pytest

from gateway import fan_out as fan_out_module
from gateway.debounce import Debouncer
from gateway.hub import Hub


class RecordingClient:
    """Stands where a StreamClient does: records what the hub writes to it."""

    def __init__(self, types: set[str], chunked: bool = True) -> None:
        self.id = str(id(self))
        self.types = frozenset(types)
        self.chunked = chunked
        self.frame_key = (self.types, chunked)
        self.writes: list[bytes] = []
        self.messages_sent = 0
        self.last_event_at = None
        self.close_reason = None

    def send(self, data: bytes) -> bool:
        self.writes.append(data)
        return True


@pytest.fixture
def hub(settings):
    return Hub(settings, commands=None)  # fan_out touches no Redis


def test_each_message_is_encoded_once_per_set_of_channels_not_per_client(hub, monkeypatch):
    encoded = []
    real = fan_out_module.messages.event_message
    monkeypatch.setattr(fan_out_module.messages, "event_message", lambda *a: encoded.append(a) or real(*a))
    orders_only = [RecordingClient({"ORDER_RECEIVED"}) for _ in range(500)]
    both = [RecordingClient({"ORDER_RECEIVED", "PRICE_CHANGE"}) for _ in range(500)]
    for client in orders_only + both:
        hub.registry.add(client)
    d = Debouncer(window_ms=0, max_events=10)
    d.add((1, 0), "ORDER_RECEIVED", '{"id":"1-0"}', 0)
    hub.fan_out.send_batches(d.flush_due(0))
    assert len(encoded) == 2  # one per set of channels, for 1,000 clients
    assert all(len(c.writes) == 1 for c in orders_only + both)
    assert hub.tallies.types["ORDER_RECEIVED"]["messages"] == 1000


def test_messages_due_together_leave_in_one_write_per_client(hub):
    client = RecordingClient({"ORDER_RECEIVED", "PRICE_CHANGE"}, chunked=False)
    hub.registry.add(client)
    d = Debouncer(window_ms=0, max_events=10)
    d.add((1, 0), "ORDER_RECEIVED", '{"id":"1-0"}', 0)
    d.add((1, 1), "PRICE_CHANGE", '{"id":"1-1"}', 0)
    d.add((1, 2), "ORDER_RECEIVED", '{"id":"1-2"}', 0)
    hub.fan_out.send_batches(d.flush_due(0))
    (write,) = client.writes
    assert write.count(b"event: ") == 3 and client.messages_sent == 3
    assert write.index(b"1-0") < write.index(b"1-1") < write.index(b"1-2")  # stream order kept
