"""Sending tasks by name from outside a worker (the CLI), and URLs shown without their password."""

from __future__ import annotations

from typing import Any

import click
from celery import Celery

from shared.config import Settings
from shared.redis_client import broker_transport_options, broker_url


def task_client(settings: Settings) -> Celery[Any]:
    """A Celery app that only sends (no tasks registered), failing fast when the broker is down."""
    app: Celery[Any] = Celery("rakuda-cli", broker=broker_url(settings), set_as_current=False)
    app.conf.update(broker_transport_options=broker_transport_options(settings),
                    task_default_queue="rakuda", broker_connection_timeout=5, broker_connection_max_retries=1)
    return app


def send_now(settings: Settings, name: str, **options: Any) -> None:
    """Queue task ``name``; a ClickException naming the broker (without its password) if it cannot."""
    app = task_client(settings)
    try:
        app.send_task(name, **options)
    except Exception as exc:
        raise click.ClickException(f"could not queue {name} (broker {safe_url(app.conf.broker_url)}): {exc}") from None
    finally:
        app.close()
    click.echo(f"queued {name}")


def safe_url(url: str) -> str:
    """``url`` without a password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in credentials else user}@{host}"
