"""Queueing a long list of ids as tasks of a few ids each."""

from __future__ import annotations

from typing import Any

from celery import Celery


def send_batches(app: Celery[Any], name: str, ids: list[int], size: int) -> int:
    """Send task ``name`` once per ``size`` ids (in order); how many tasks were sent."""
    batches = [ids[i:i + size] for i in range(0, len(ids), size)]
    for batch in batches:
        app.send_task(name, args=[batch])
    return len(batches)
