"""The notifier process against local stand-ins for Discord, LINE and a Standard Webhooks receiver."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from shared.event_bus import EventBus
from shared.realtime import RealTimeEvent
from tests.notify.conftest import SECRET, NotifierProcess, notify_env
from tests.notify.receivers import Answer, Received, Receiver
from tests.waiting import eventually

pytestmark = pytest.mark.slow


def order(n: int) -> RealTimeEvent:
    return RealTimeEvent.create("ORDER_RECEIVED", n, "created",
                                {"marketplace": "EBAY", "orderId": f"E-{n}", "total": "10.00", "currency": "USD"})


def sold_out(n: int, available: bool = False) -> RealTimeEvent:
    return RealTimeEvent.create("INVENTORY_CHANGE", n, "updated",
                                {"isAvailable": available, "title": f"Item {n}", "productId": n})


MARKER = 999  # an order published after the ones under test: once every target has it, nothing
# of the earlier ones is still on its way (each target is sent the stream's events in order)


def after_the_marker(bus: EventBus, receivers: dict[str, Receiver]) -> None:
    """Publish the marker order and wait until every target has been sent it."""
    bus.publish("orders", order(MARKER))
    eventually(lambda: all(any(f"E-{MARKER}" in json.dumps(b) for b in r.bodies()) for r in receivers.values()),
               30, what="the marker order at every target")


def without_marker(numbers: list[str]) -> list[str]:
    return [n for n in numbers if n != f"E-{MARKER}"]


def start(notifier_processes, env, redis_client, groups: int = 3) -> NotifierProcess:
    proc = NotifierProcess(env).start()
    notifier_processes.append(proc)

    def ready() -> bool:
        assert proc.proc is not None
        if proc.proc.poll() is not None:
            raise AssertionError(f"notifier exited:\n{proc.log()}")
        try:
            return len(redis_client.xinfo_groups("rakuda:realtime:history")) >= groups
        except Exception:
            return False

    eventually(ready, timeout=30, what="the notifier's consumer groups")
    return proc


def verified_ids(receiver: Receiver) -> list[str]:
    """Ids of the webhook deliveries, each signature checked by the standardwebhooks library."""
    wh = Webhook(SECRET)
    out = []
    for rec in list(receiver.accepted):
        payload = wh.verify(rec.body, {k: v for k, v in rec.headers.items() if k.startswith("webhook-")})
        assert payload["id"] == rec.headers["webhook-id"]
        out.append(rec.headers["webhook-id"])
    return out


def order_numbers(receiver: Receiver, kind: str) -> list[str]:
    found = []
    for body in receiver.bodies():
        if kind == "discord":
            text = body["embeds"][0]["description"]
        elif kind == "line":
            text = body["messages"][0]["text"]
        else:
            text = "Order " + body["data"]["orderId"] if "data" in body else body["payload"]["data"]["orderId"]
        for word in text.replace(":", " ").split():
            if word.startswith("E-"):
                found.append(word)
                break
    return found


def test_every_target_gets_every_order_once_with_a_link_and_a_valid_signature(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    start(notifier_processes, notify_env(redis_url, receivers), redis_client)
    ids = bus.publish_many("orders", [order(i) for i in range(5)])
    eventually(lambda: all(len(r.accepted) >= 5 for r in receivers.values()), 30, what="5 deliveries per target")
    after_the_marker(bus, receivers)  # so that a sixth delivery of the five would have arrived by now
    discord, line, hook = (receivers[k] for k in ("discord", "line", "webhook"))
    assert verified_ids(hook)[:-1] == ids
    assert [b["payload"]["id"] for b in hook.bodies()] == [str(i) for i in range(5)] + [str(MARKER)]
    embeds = [b["embeds"][0] for b in discord.bodies()[:-1]]
    assert [e["url"] for e in embeds] == [f"http://dash.example/orders/{i}" for i in range(5)]
    line_bodies = line.bodies()[:-1]
    assert all(r.headers["authorization"] == "Bearer line-token" for r in line.accepted)
    assert {r.path for r in line.accepted} == {"/v2/bot/message/push"}
    assert all(b["to"] == "U0123" and b["messages"][0]["type"] == "text" for b in line_bodies)
    assert "http://dash.example/orders/3" in line_bodies[3]["messages"][0]["text"]
    for name, receiver in receivers.items():
        assert order_numbers(receiver, name) == [f"E-{i}" for i in range(5)] + [f"E-{MARKER}"], name


def test_inventory_bursts_are_summarised_in_chats_and_available_again_is_not_sent(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    start(notifier_processes, notify_env(redis_url, receivers, NOTIFY_BATCH_WINDOW="1.5"), redis_client)
    bus.publish_many("inventory", [sold_out(i) for i in range(37)] + [sold_out(99, available=True)])
    bus.publish("orders", order(1))
    eventually(lambda: len(receivers["webhook"].accepted) >= 38, 30, what="webhook gets each event")
    eventually(lambda: len(receivers["discord"].accepted) >= 2, 30, what="discord summary")
    after_the_marker(bus, receivers)  # the summary's window has closed: a second one would be here
    discord = receivers["discord"].bodies()[:-1]
    assert len(discord) == 2  # the order alone, the 37 sold-out items in one summary
    summary = next(b for b in discord if "inventory" in b["content"])
    assert summary["content"] == "37 inventory changes"
    description = summary["embeds"][0]["description"]
    assert "Item 0 is sold out" in description and "32 more" in description
    assert len(receivers["line"].accepted) == 3  # the same two, and the marker
    hook_ids = [b["payload"]["id"] for b in receivers["webhook"].bodies()][:-1]
    assert "99" not in hook_ids and len(hook_ids) == 38


def test_sigkill_mid_run_then_restart_delivers_every_event_at_least_once(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    for r in receivers.values():  # a slow receiver, so the kill lands mid-run
        r.script = lambda n, rec: (time.sleep(0.01), (200, {}, b"{}"))[1]
    env = notify_env(redis_url, receivers)
    first = start(notifier_processes, env, redis_client)
    bus.publish_many("orders", [order(i) for i in range(200)])
    eventually(lambda: len(receivers["webhook"].accepted) >= 60, timeout=60, what="part of the run")
    first.kill()
    partial = {k: len(r.accepted) for k, r in receivers.items()}
    assert all(n < 200 for n in partial.values()), partial
    start(notifier_processes, env, redis_client)
    eventually(lambda: all(set(order_numbers(r, k)) >= {f"E-{i}" for i in range(200)}
                           for k, r in receivers.items()), timeout=120, what="every event after the restart")
    for name, receiver in receivers.items():
        counts = Counter(order_numbers(receiver, name))
        assert set(counts) == {f"E-{i}" for i in range(200)}, name
        assert sum(counts.values()) - 200 <= 2, (name, [k for k, v in counts.items() if v > 1])  # in flight at kill
    verified_ids(receivers["webhook"])


def test_a_clean_200_event_run_delivers_each_exactly_once(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    env = notify_env(redis_url, receivers)
    proc = start(notifier_processes, env, redis_client)
    bus.publish_many("orders", [order(i) for i in range(100)])
    eventually(lambda: all(len(r.accepted) >= 100 for r in receivers.values()), timeout=60, what="first half")
    proc.stop()  # a deploy: SIGTERM, then a new process
    start(notifier_processes, env, redis_client)
    bus.publish_many("orders", [order(i) for i in range(100, 200)])
    eventually(lambda: all(len(r.accepted) >= 200 for r in receivers.values()), 60, what="every event")
    after_the_marker(bus, receivers)  # a second delivery of any of the 200 would have arrived by now
    for name, receiver in receivers.items():
        assert sorted(without_marker(order_numbers(receiver, name))) == sorted(f"E-{i}" for i in range(200)), name
    assert len(set(verified_ids(receivers["webhook"]))) == 201


def test_429_with_retry_after_is_retried_after_it_and_nothing_is_lost(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    def limited(n: int, _rec: Received) -> Answer:
        if n in (0, 3):
            return 429, {"Retry-After": "2", "Content-Type": "application/json"}, b'{"retry_after": 2}'
        return 200, {}, b"{}"

    receivers["discord"].script = limited
    start(notifier_processes, notify_env(redis_url, receivers, NOTIFY_MAX_ATTEMPTS="4"), redis_client)
    bus.publish_many("orders", [order(i) for i in range(4)])
    eventually(lambda: len(receivers["discord"].accepted) >= 4, timeout=60, what="discord after its 429s")
    refused = receivers["discord"].refused
    accepted = receivers["discord"].accepted
    assert len(refused) == 2
    assert accepted[0].at - refused[0].at >= 1.9  # waited as told, not the 0.05 s backoff
    assert order_numbers(receivers["discord"], "discord") == [f"E-{i}" for i in range(4)]
    assert redis_client.hlen("rakuda:realtime:notify:dead") == 0


def test_a_target_down_for_the_whole_run_fills_the_dead_letters_while_others_deliver(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus, gateway_factory):
    receivers["line"].script = lambda n, rec: (503, {}, b"down")
    start(notifier_processes, notify_env(redis_url, receivers), redis_client)
    bus.publish_many("orders", [order(i) for i in range(10)])
    eventually(lambda: len(receivers["webhook"].accepted) >= 10 and len(receivers["discord"].accepted) >= 10,
               timeout=30, what="the healthy targets")
    eventually(lambda: redis_client.hlen("rakuda:realtime:notify:dead") >= 10, timeout=60, what="10 dead letters")
    assert len(receivers["line"].refused) == 30  # NOTIFY_MAX_ATTEMPTS=3 each
    gateway = gateway_factory()
    key = {"X-API-Key": "test-key"}
    assert requests.get(gateway.url + "/api/notifications/dead", timeout=10).status_code == 401
    dead = requests.get(gateway.url + "/api/notifications/dead", headers=key, timeout=10).json()
    assert dead["total"] == 10
    item = dead["items"][0]
    assert item["target"] == "line" and item["attempts"] == 3 and "503" in item["error"]
    # The target is back: one retry re-queues one notification, which is then delivered.
    receivers["line"].script = lambda n, rec: (200, {}, b"{}")
    answer = requests.post(gateway.url + f"/api/notifications/dead/{item['id']}/retry", headers=key, timeout=10)
    assert answer.status_code == 202 and answer.json()["target"] == "line"
    eventually(lambda: len(receivers["line"].accepted) == 1, timeout=30, what="the retried notification")
    assert order_numbers(receivers["line"], "line") == order_numbers_of(item)
    assert requests.post(gateway.url + f"/api/notifications/dead/{item['id']}/retry", headers=key,
                         timeout=10).status_code == 404
    assert requests.get(gateway.url + "/api/notifications/dead", headers=key, timeout=10).json()["total"] == 9


def order_numbers_of(dead_item: dict) -> list[str]:
    return [dead_item["notification"]["events"][0]["payload"]["data"]["orderId"]]


def test_notify_test_sends_a_sample(receivers, redis_url):
    import subprocess
    import sys

    from tests.notify.conftest import ROOT
    env = {**__import__("os").environ, **notify_env(redis_url, receivers)}
    out = subprocess.run([sys.executable, "-m", "tasks.cli", "notify", "test", "webhook"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(verified_ids(receivers["webhook"])) == 1
    bad = subprocess.run([sys.executable, "-m", "tasks.cli", "notify", "test", "pager"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no target 'pager'" in bad.stderr
    json.dumps(out.stdout)


def test_with_log_format_json_every_line_the_notifier_writes_is_a_json_object(
        notifier_processes, receivers, redis_url, redis_client, bus: EventBus):
    receivers["line"].script = lambda n, rec: (503, {}, b"down") if n == 0 else (200, {}, b"{}")
    proc = start(notifier_processes, notify_env(redis_url, receivers, LOG_FORMAT="json"), redis_client)
    sent = bus.publish("orders", order(1))
    eventually(lambda: all(r.accepted for r in receivers.values()), 30, what="the order at every target")
    proc.stop()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    messages = {(r["level"], r["logger"], r["message"].split(" (")[0]) for r in records}
    assert ("INFO", "tasks.notify.cli", "sending to discord, line, webhook") in messages, records
    assert ("WARNING", "tasks.notify.delivery", f"line: attempt 1 of 3 for {sent} failed") in messages, records
