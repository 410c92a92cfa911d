"""What the task side and the gateway agree on: settings, event schema, channels and the bus."""
