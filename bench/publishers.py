"""Publishers: drive each system at a fixed rate or with one burst, the way its users would."""

from __future__ import annotations

import json
import time
import urllib.request

import redis

from bench.events import CHANNEL_OF, TYPES, batch_json, bus_id, event_dict, event_json_with_id


def paced(count: int, rate: float, send) -> float:
    """Call ``send(i)`` ``count`` times, ``rate`` per second (0: back to back); returns the seconds taken."""
    t0 = time.monotonic()
    for i in range(count):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        send(i)
    return time.monotonic() - t0


class Publisher:
    started_ms = 0.0  # wall clock (ms) when the last burst began to reach the system

    def at_rate(self, count: int, rate: float) -> float:
        """``count`` events, types in turn, ``rate`` per second; returns seconds."""
        raise NotImplementedError

    def burst(self, count: int, event_type: str = "PRICE_CHANGE") -> float:
        """``count`` events of one type as fast as the system takes them; returns seconds."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class GatewayPublisher(Publisher):
    """The project's own EventBus: XADD to the history and PUBLISH, one Lua call per chunk."""

    def __init__(self, redis_url: str) -> None:
        from shared.config import Settings
        from shared.event_bus import EventBus

        self.bus = EventBus()
        self.bus.initialize(Settings.from_env({"REDIS_URL": redis_url, "REALTIME_HISTORY_MAX": "200000"}))

    def at_rate(self, count: int, rate: float) -> float:
        def send(i: int) -> None:
            event_type = TYPES[i % len(TYPES)]
            self.bus.publish(CHANNEL_OF[event_type], event_dict(event_type, i))

        return paced(count, rate, send)

    def burst(self, count: int, event_type: str = "PRICE_CHANGE") -> float:
        from shared.realtime import RealTimeEvent

        # Validated before the clock starts: the burst is what reaches Redis, not pydantic's work.
        events = [RealTimeEvent.parse(event_dict(event_type, i)) for i in range(count)]
        self.started_ms = time.time() * 1000
        t0 = time.monotonic()
        self.bus.publish_many(CHANNEL_OF[event_type], events)
        return time.monotonic() - t0

    def close(self) -> None:
        self.bus.close()


class FlaskSsePublisher(Publisher):
    """What ``sse.publish(data, type=, id=, channel=)`` sends, with the gateway's message data."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.channel = channel
        self.seq = 0

    def _message(self, event_type: str, i: int) -> str:
        self.seq += 1
        sid = bus_id(int(time.time() * 1000), self.seq)
        data = json.loads(batch_json(event_type, [event_json_with_id(event_type, i, sid)]))
        return json.dumps({"data": data, "type": event_type, "id": sid})

    def at_rate(self, count: int, rate: float) -> float:
        return paced(count, rate, lambda i: self.redis.publish(self.channel, self._message(TYPES[i % 4], i)))

    def burst(self, count: int, event_type: str = "PRICE_CHANGE") -> float:
        self.started_ms = time.time() * 1000
        t0 = time.monotonic()
        for start in range(0, count, 1000):
            pipe = self.redis.pipeline(transaction=False)
            for i in range(start, min(count, start + 1000)):
                pipe.publish(self.channel, self._message(event_type, i))
            pipe.execute()
        return time.monotonic() - t0

    def close(self) -> None:
        self.redis.close()


class CeilingPublisher(Publisher):
    """The ceiling makes its own messages: one HTTP call tells it how many and how fast."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _fire(self, count: int, rate: float) -> float:
        self.started_ms = time.time() * 1000
        t0 = time.monotonic()
        with urllib.request.urlopen(f"{self.base_url}/fire?count={count}&rate={rate}", timeout=300) as response:
            json.loads(response.read())
        return time.monotonic() - t0

    def at_rate(self, count: int, rate: float) -> float:
        return self._fire(count, rate)

    def burst(self, count: int, event_type: str = "PRICE_CHANGE") -> float:
        return self._fire(count, 0)
