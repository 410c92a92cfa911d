"""Named errors of the shared layer; each message names the value that was wrong."""

from __future__ import annotations


class RakudaError(Exception):
    """Base class for errors raised by this project."""


class ConfigError(RakudaError):
    """A setting is missing or has a value that cannot be used."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"Config {key!r}: {message}")


class InvalidEventError(RakudaError, ValueError):
    """An event does not follow the schema; ``field`` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"invalid event: {field}: {message}")


class ChannelMismatchError(RakudaError, ValueError):
    """An event was published to a channel that does not carry its type."""

    def __init__(self, channel: str, event_type: str, expected: str) -> None:
        self.channel = channel
        self.event_type = event_type
        super().__init__(
            f"{event_type} events belong on {expected!r}, not on {channel!r}"
        )


class UnknownChannelError(RakudaError, ValueError):
    """A channel name is not one of EVENT_CHANNELS."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"unknown channel {channel!r}")


class PublishError(RakudaError):
    """Redis did not take the event: it was NOT published (callers keep it, e.g. in the outbox)."""

    def __init__(self, channel: str, cause: BaseException) -> None:
        self.channel = channel
        super().__init__(f"could not publish to {channel!r}: {cause}")


class BusNotInitializedError(RakudaError, RuntimeError):
    """An EventBus attribute was read before ``initialize()`` bound the bus to Redis."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute
        super().__init__(
            f"EventBus.{attribute} read before initialize(): call initialize(settings) first "
            "(publish(), subscribe() and consumer() bind an uninitialised bus to the environment's settings)"
        )
