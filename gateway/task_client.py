"""The gateway's Celery app: it only sends tasks by name, and fails fast instead of waiting for the broker."""

from __future__ import annotations

from celery import Celery

from shared.config import Settings
from shared.redis_client import broker_transport_options, broker_url


def make_task_client(settings: Settings) -> Celery:
    client = Celery("rakuda-gateway", broker=broker_url(settings), set_as_current=False)
    client.conf.update(broker_transport_options=broker_transport_options(settings),
                       broker_connection_timeout=2, broker_connection_retry=False,
                       broker_connection_max_retries=0, task_publish_retry=False,
                       task_default_queue="rakuda")
    return client
