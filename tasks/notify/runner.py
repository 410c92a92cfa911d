"""The notifier process: one thread per target, each a member of its own consumer group
(``notify:<target>``), plus the escalation of orders nobody acknowledged.

A history entry is acknowledged only after its notification was sent or dead-lettered, so a
notifier killed at any point sends it after the restart (at least once); the sent-ids record
keeps a run without a crash from sending anything twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Self, cast

import redis

from shared.config import Settings
from shared.consumer import Consumer, Entry
from shared.notify_store import queue_key
from shared.order_ack import ESCALATION_DUE, ESCALATION_EVENTS, is_acknowledged
from shared.realtime import RealTimeEvent
from shared.redis_client import redis_for
from shared.redis_replies import text
from tasks.notify import messages
from tasks.notify.delivery import Deliverer
from tasks.notify.messages import Notification
from tasks.notify.rules import Rule, load_rules
from tasks.notify.targets import Target, targets_from_settings

log = logging.getLogger(__name__)

GROUP_PREFIX = "notify:"
ESCALATION_GROUP = "notify-escalation"


class _Loop:
    """A daemon thread calling ``step()`` until stopped; an error is logged and the loop goes on after 1 s.

    Every worker of the notifier is one: a target that fails, or a bug in one event, must delay only
    that worker, never end its thread.
    """

    def _init_loop(self, name: str) -> None:
        self.loop_name = name
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except redis.RedisError as exc:
                log.warning("%s: Redis error, retrying: %s", self.loop_name, exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("%s: unexpected error, retrying", self.loop_name)
                self._stop.wait(1.0)

    def step(self) -> None:
        raise NotImplementedError


class TargetWorker(_Loop):
    """Reads the group ``notify:<target>``; orders go one by one, other events in summaries."""

    def __init__(self, settings: Settings, target: Target, rule: Rule | None, *, read: bool = True) -> None:
        self.settings = settings
        self.target = target
        self.rule = rule
        self.redis = redis_for(settings, socket_timeout=None, client_name=f"notify-{target.name}")
        self.deliverer = Deliverer(self.redis, settings, target)
        self.consumer = (Consumer(self.redis, settings, GROUP_PREFIX + target.name, name=f"notifier-{target.name}",
                                  types=settings.notify_events) if read else None)
        self._batch: dict[str, RealTimeEvent] = {}
        self._batch_since = 0.0
        self._init_loop(f"notify-{target.name}")

    def step(self) -> None:
        self.drain_queue()
        if self.consumer is None:
            self._stop.wait(0.2)
            return
        block_ms = 200 if self._batch else 500
        for entry in self.consumer.poll(count=50, block_ms=block_ms):
            self.take(entry)
        if self._batch and time.monotonic() - self._batch_since >= self.settings.notify_batch_window_s:
            self.flush()

    def drain_queue(self) -> None:
        """Notifications queued directly (a dead-letter retry, an escalation): removed once handled."""
        key = queue_key(self.target.name)
        while not self._stop.is_set():
            raw = self.redis.lindex(key, 0)
            if raw is None:
                return
            self.deliverer.deliver(Notification.from_json(json.loads(raw)))
            self.redis.lpop(key)

    def take(self, entry: Entry) -> None:
        assert self.consumer is not None and entry.event is not None
        event = entry.event
        if self.rule is None or not self.rule.wants(event):
            self.consumer.ack([entry.stream_id])
            return
        if event.type.value == "ORDER_RECEIVED" or not self.target.batches:
            self.deliverer.deliver(messages.for_event(event, self.settings.notify_dashboard_url))
            self.consumer.ack([entry.stream_id])
            return
        if not self._batch:
            self._batch_since = time.monotonic()
        self._batch[entry.stream_id] = event

    def flush(self) -> None:
        assert self.consumer is not None
        events = [e for sid, e in self._batch.items() if not self.deliverer.already_sent(sid)]
        if len(events) == 1:
            self.deliverer.deliver(messages.for_event(events[0], self.settings.notify_dashboard_url))
        elif events:
            self.deliverer.deliver(messages.summary(events), event_ids=[e.id or "" for e in events])
        self.consumer.ack(list(self._batch))
        self._batch.clear()


class EscalationWorker(_Loop):
    """Notes every new order; an order still unacknowledged when due goes to the escalation targets."""

    def __init__(self, settings: Settings, escalation_targets: list[str]) -> None:
        self.settings = settings
        self.targets = escalation_targets
        self.redis = redis_for(settings, socket_timeout=None, client_name="notify-escalation")
        self.consumer = Consumer(self.redis, settings, ESCALATION_GROUP, name="notifier-escalation",
                                 types=["ORDER_RECEIVED"])
        self._init_loop("notify-escalation")

    @property
    def after_s(self) -> float:
        return self.settings.order_ack_escalate_after * self.settings.order_ack_minute_s

    def step(self) -> None:
        for entry in self.consumer.poll(count=100, block_ms=250):
            event = entry.event
            assert event is not None
            if event.payload.action == "created":
                self.note(event)
            self.consumer.ack([entry.stream_id])
        self.escalate_due()

    def note(self, event: RealTimeEvent) -> None:
        order_id = event.payload.id
        if is_acknowledged(self.redis, order_id):
            return
        pipe = self.redis.pipeline()
        pipe.zadd(ESCALATION_DUE, {order_id: time.time() + self.after_s}, nx=True)
        pipe.hsetnx(ESCALATION_EVENTS, order_id, event.to_json())
        pipe.execute()

    def escalate_due(self) -> None:
        for raw_id in cast(list[Any], self.redis.zrangebyscore(ESCALATION_DUE, "-inf", time.time(), start=0, num=100)):
            order_id = text(raw_id)
            raw_event = self.redis.hget(ESCALATION_EVENTS, order_id)
            pipe = self.redis.pipeline()  # MULTI: queued for every target and removed, or neither
            if raw_event is not None and not is_acknowledged(self.redis, order_id):
                event = RealTimeEvent.parse(raw_event)
                note = messages.escalation(event, self.settings.notify_dashboard_url,
                                           self.settings.order_ack_escalate_after)
                for name in self.targets:
                    pipe.rpush(queue_key(name), json.dumps(note.to_json()))
                log.info("order %s not acknowledged: escalated to %s", order_id, ", ".join(self.targets) or "nobody")
            pipe.zrem(ESCALATION_DUE, order_id)
            pipe.hdel(ESCALATION_EVENTS, order_id)
            pipe.execute()


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        targets = targets_from_settings(settings)
        escalation = targets_from_settings(settings, escalation=True)
        rules = load_rules(settings, [t.name for t in targets])
        self.workers: list[Any] = [TargetWorker(settings, t, rules[t.name]) for t in targets]
        self.workers += [TargetWorker(settings, t, None, read=False) for t in escalation]
        if escalation:
            self.workers.append(EscalationWorker(settings, [t.name for t in escalation]))

    @property
    def target_names(self) -> list[str]:
        return [w.target.name for w in self.workers if isinstance(w, TargetWorker)]

    def start(self) -> Notifier:
        for w in self.workers:
            w.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.thread.join(timeout)
