"""The task side: Celery tasks that check inventory, publish listings, sync prices and apply webhooks."""
