"""``rakuda notify run`` and ``rakuda notify test TARGET``."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import click

from shared.config import Settings
from shared.logs import configure_logging
from shared.realtime import RealTimeEvent
from tasks.notify import messages
from tasks.notify.targets import DeliveryFailed, Target, targets_from_settings

log = logging.getLogger(__name__)


def _configured(settings: Settings) -> list[Target]:
    try:
        return targets_from_settings(settings) + targets_from_settings(settings, escalation=True)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def run(settings: Settings) -> None:
    from tasks.notify.runner import Notifier

    configure_logging(settings.log_format, settings.log_level)
    try:
        notifier = Notifier(settings)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if not notifier.target_names:
        log.warning("no target configured (docs/notifications.md); waiting idle")
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    notifier.start()
    log.info("sending to %s", ", ".join(notifier.target_names) or "nobody")
    done.wait()
    notifier.stop()


def send_test(settings: Settings, name: str) -> None:
    import requests

    targets = {t.name: t for t in _configured(settings)}
    target = targets.get(name)
    if target is None:
        raise click.ClickException(f"no target {name!r} is configured (configured: {', '.join(targets) or 'none'})")
    event = RealTimeEvent.create("ORDER_RECEIVED", "0", "created",
                                 {"marketplace": "EBAY", "orderId": "TEST-ORDER", "total": "1.00", "currency": "USD",
                                  "test": True})
    event = event.model_copy(update={"id": f"test-{int(time.time() * 1000)}"})
    note = messages.for_event(event, settings.notify_dashboard_url)
    note = messages.Notification(id=note.id, title="Test notification from rakuda", text=note.text, url=note.url,
                                 events=note.events, kind="test")
    try:
        target.send(requests.Session(), note)
    except DeliveryFailed as exc:
        raise click.ClickException(f"{name}: {exc}") from None
    click.echo(f"{name}: sample delivered")
