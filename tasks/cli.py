"""``rakuda``: migrate the database, seed the demo, run a sweep now, send a signed sample webhook.

Settings come from the environment (and ``.env``), as for the worker and the gateway.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import click

from shared import task_names
from shared.config import Settings, get_settings
from shared.production import refuse_to_start_if_unsafe
from shared.timestamps import utc_iso
from tasks.sample_webhooks import sample_delivery


def _settings() -> Settings:
    return get_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """RAKUDA task pipeline: database, demo data, sweeps and sample webhooks."""
    refuse_to_start_if_unsafe(_settings())


@main.group()
def db() -> None:
    """The database named by DATABASE_URL."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to migrate to.")
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema of DATABASE_URL."""
    from tasks.schema import upgrade
    from tasks.task_client import safe_url

    settings = _settings()
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {revision}: {safe_url(settings.database_url)}")


@main.group()
def demo() -> None:
    """The demo catalogue and sandbox."""


@demo.command("seed")
@click.option("--products", default=300, show_default=True, help="Products to create (two listings each).")
@click.option("--orders", default=20, show_default=True, help="Past orders to create.")
@click.option("--publish/--no-publish", default=True, show_default=True,
              help="Queue the PENDING_PUBLISH listings for the worker.")
def demo_seed(products: int, orders: int, publish: bool) -> None:
    """Seed the demo catalogue (once: a database with products is left alone)."""
    from tasks.demo import seed_catalogue
    from tasks.runtime import Runtime

    runtime = Runtime(_settings())
    try:
        created = seed_catalogue(runtime, products=products, orders=orders)
    finally:
        runtime.reset()
    pending = created.pending_ids
    click.echo("seeded: " + created.summary())
    if publish and pending:
        from tasks.task_client import task_client

        app = task_client(_settings())
        for listing_id in pending:
            app.send_task(task_names.LISTING_PUBLISH, args=[listing_id])
        app.close()
        click.echo(f"queued {len(pending)} listing(s) for publishing")


@main.command("tail")
@click.option("--url", envvar="RAKUDA_URL", default="http://127.0.0.1:5000", show_default=True,
              help="The gateway (or RAKUDA_URL).")
@click.option("--key", envvar="RAKUDA_API_KEY", default="", help="An API key (or RAKUDA_API_KEY).")
@click.option("--channels", default="", help="Comma-separated channels, e.g. orders,inventory (default: all).")
@click.option("--types", default="", help="Comma-separated event types to show, e.g. ORDER_RECEIVED.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Exit 0 after this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a line.")
@click.option("--last-event-id", default=None, help="Start after this id (resume).")
@click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
              help="Failed connects in a row before giving up (exit 1).")
def tail(url: str, key: str, channels: str, types: str, count: int | None, as_json: bool,
         last_event_id: str | None, retries: int) -> None:
    """Follow the live events: one line each (time type id action:item payload).

    Reconnects and resumes by itself; exits 0 after --count events, 2 when the key is refused,
    1 when the gateway cannot be reached.
    """
    from tasks.tail import Tail

    wanted = frozenset(t.strip().upper() for t in types.split(",") if t.strip())
    sys.exit(Tail(url=url, key=key, channels=channels, types=wanted, count=count, as_json=as_json,
                  last_event_id=last_event_id, retries=retries).run())


@main.group()
def auth() -> None:
    """Addresses blocked after failed attempts at an API key or token."""


@auth.command("blocked")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per block.")
def auth_blocked(as_json: bool) -> None:
    """List the blocks in force: address (IPv6: its /64), until when, failed attempts."""
    from shared.auth_blocks import BlockList
    from shared.redis_client import redis_from_url

    settings = _settings()
    blocks = BlockList(settings, redis_from_url(settings.redis_url)).blocks()
    for block in blocks:
        until = utc_iso(block.until, "seconds")
        if as_json:
            click.echo(json.dumps({"address": block.address, "until": until,
                                   "untilEpoch": round(block.until, 3), "failures": block.failures}))
        else:
            click.echo(f"{block.address}\tuntil {until} ({max(0, round(block.until - time.time()))} s)"
                       f"\t{block.failures} failures")
    if not blocks and not as_json:
        click.echo("no address is blocked")


@auth.command("unblock")
@click.argument("address")
def auth_unblock(address: str) -> None:
    """Lift the block of ADDRESS and forget its failures (every gateway process within 2 s)."""
    from shared.auth_blocks import BlockList
    from shared.client_addresses import client_unit
    from shared.redis_client import redis_from_url

    settings = _settings()
    lifted = BlockList(settings, redis_from_url(settings.redis_url)).unblock(address)
    if not lifted:
        click.echo(f"{client_unit(address)} was not blocked", err=True)
        sys.exit(1)
    click.echo(f"unblocked {client_unit(address)}")


@main.group()
def inventory() -> None:
    """Inventory checks."""


@inventory.command("check")
@click.option("--all", "everything", is_flag=True, help="Check every product, not only those due.")
def inventory_check(everything: bool) -> None:
    """Run an inventory sweep now, through Celery (a worker must be running)."""
    from tasks.task_client import send_now

    send_now(_settings(), task_names.INVENTORY_SWEEP, kwargs={"everything": everything})


@main.group()
def prices() -> None:
    """Listing prices."""


@prices.command("sync")
def prices_sync() -> None:
    """Run a price sync now, through Celery (a worker must be running)."""
    from tasks.task_client import send_now

    send_now(_settings(), task_names.PRICE_SYNC)


@main.group()
def outbox() -> None:
    """The event outbox."""


@outbox.command("relay")
def outbox_relay() -> None:
    """Publish events left unsent (in this process, not through Celery)."""
    from tasks.runtime import Runtime

    runtime = Runtime(_settings())
    try:
        click.echo(f"published {runtime.outbox.relay()} event(s)")
    finally:
        runtime.reset()


@main.group()
def notify() -> None:
    """The notifier: Discord, LINE and signed webhooks (docs/notifications.md)."""


@notify.command("run")
def notify_run() -> None:
    """Run the notifier until SIGTERM or Ctrl-C."""
    from tasks.notify.cli import run

    run(_settings())


@notify.command("test")
@click.argument("target")
def notify_test(target: str) -> None:
    """Send a sample notification to TARGET (discord, line, webhook, escalation-…) now."""
    from tasks.notify.cli import send_test

    send_test(_settings(), target)


@main.group()
def webhook() -> None:
    """Sample marketplace webhooks."""


@webhook.command("send")
@click.argument("provider", type=click.Choice(["joom", "ebay"]))
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, envvar="RAKUDA_GATEWAY_URL",
              help="Base URL of a running gateway.")
@click.option("--order-id", default=None, help="Order id to use (default: a new random one).")
def webhook_send(provider: str, url: str, order_id: str | None) -> None:
    """Send a signed sample order delivery to a running gateway (secrets from the settings)."""
    settings = _settings()
    body, headers = sample_delivery(provider, settings, order_id or f"DEMO-{uuid.uuid4().hex[:8].upper()}")
    request = urllib.request.Request(f"{url.rstrip('/')}/api/webhooks/{provider}", data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        raise click.ClickException(f"could not reach {url}: {exc.reason}") from None
    click.echo(f"{status} {answer.strip()}")
    if status >= 400:
        sys.exit(1)


if __name__ == "__main__":
    main()
