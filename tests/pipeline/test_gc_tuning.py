"""The worker sets the garbage collector for batch work before its pool forks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers import ROOT

PROBE = """
import gc, json
before = gc.get_threshold()
import tasks.worker
from celery.signals import worker_init
worker_init.send(sender=None)
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_the_worker_freezes_its_start_up_objects_and_raises_the_young_threshold(redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url}
    env.pop("CI", None)
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["before"] != seen["after"] == [50_000, 20, 10]  # CPython's defaults before: 700, 10, 10 on 3.11
    assert seen["frozen"] > 10_000  # the imports: modules, the app, its tasks
