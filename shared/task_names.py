"""Names of the Celery tasks, so the gateway can hand work to a task without importing ``tasks``."""

from __future__ import annotations

from typing import Final

INVENTORY_SWEEP: Final = "rakuda.inventory.sweep"
INVENTORY_CHECK_BATCH: Final = "rakuda.inventory.check_batch"
LISTING_PUBLISH: Final = "rakuda.listings.publish"
LISTING_END: Final = "rakuda.listings.end"
PRICE_SYNC: Final = "rakuda.prices.sync"
PRICE_SYNC_BATCH: Final = "rakuda.prices.sync_batch"
FX_REFRESH: Final = "rakuda.prices.fx_refresh"
WEBHOOK_PROCESS: Final = "rakuda.webhooks.process"
WEBHOOK_SWEEP: Final = "rakuda.webhooks.sweep"
OUTBOX_RELAY: Final = "rakuda.outbox.relay"
OUTBOX_PRUNE: Final = "rakuda.outbox.prune"
DEMO_ORDERS: Final = "rakuda.demo.simulate_orders"
