"""What a task needs (database, event bus, outbox, supplier and marketplace clients), bound lazily.

One Runtime per Celery app; ``reset()`` after a fork (``worker_process_init``) so no child
shares the parent's database or Redis sockets.
"""

from __future__ import annotations

import threading

from shared.config import Settings
from shared.database import Database
from shared.event_bus import EventBus
from tasks.marketplace import HttpMarketplaceClient, MarketplaceClient, SandboxMarketplace
from tasks.outbox import Outbox
from tasks.supplier import HttpSupplierClient, SandboxSupplier, SupplierClient


class Runtime:
    def __init__(self, settings: Settings, bus: EventBus | None = None, database: Database | None = None) -> None:
        self.settings = settings
        self._bus = bus or EventBus()
        self._db = database or Database()
        self._bound = False
        self._bind_lock = threading.Lock()  # a worker thread and its caller may bind at once
        self._outbox: Outbox | None = None
        self.supplier: SupplierClient = (
            HttpSupplierClient(settings.supplier_api_url, settings.client_timeout_s)
            if settings.supplier_api_url else SandboxSupplier(settings.sandbox_seed)
        )
        self.marketplace: MarketplaceClient = (
            HttpMarketplaceClient(settings.marketplace_api_url, settings.client_timeout_s)
            if settings.marketplace_api_url else SandboxMarketplace(settings.sandbox_seed)
        )

    def _bind(self) -> None:
        if self._bound:
            return
        with self._bind_lock:
            if not self._bound:
                self._db.initialize(self.settings.database_url)
                self._bus.initialize(self.settings)
                self._outbox = Outbox(self._db, self._bus)
                self._bound = True

    @property
    def db(self) -> Database:
        self._bind()
        return self._db

    @property
    def bus(self) -> EventBus:
        self._bind()
        return self._bus

    @property
    def outbox(self) -> Outbox:
        self._bind()
        assert self._outbox is not None
        return self._outbox

    def reset(self) -> None:
        """Drop connections (after a fork, or at shutdown); they are made again on next use."""
        self._db.dispose()
        self._bus.close()
        self._bound = False
