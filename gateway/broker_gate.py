"""Whether to try the Celery broker for a delivery now: a pure gate driven by explicit times.

A stored webhook delivery that is not queued stays PENDING and the sweep queues it later, so
nothing depends on every delivery trying the broker. Trying costs about 2 s when the broker is
down (redis-py retries a refused connection with backoff): a gateway that tried on every
delivery during an outage would answer each one seconds late. So after a failure the gate
refuses sends for ``retry_after_s``; then it lets one send through as a trial and refuses the
others until that trial succeeds (``succeeded`` opens the gate for all) or fails.

Invariant: while the broker is known down, at most one send per ``retry_after_s`` is tried.
(The caller sends in batches, one at a time: gateway/webhook_queue.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

BROKER_RETRY_AFTER_S = 5.0


@dataclass
class BrokerGate:
    retry_after_s: float = BROKER_RETRY_AFTER_S
    down: bool = False
    refuse_until: float = 0.0

    def begin(self, now: float) -> bool:
        """Whether to try a send at ``now`` (True while down claims the one trial)."""
        if not self.down:
            return True
        if now < self.refuse_until:
            return False
        self.refuse_until = now + self.retry_after_s  # the others wait while this trial runs
        return True

    def succeeded(self) -> None:
        self.down = False
        self.refuse_until = 0.0

    def failed(self, now: float) -> None:
        self.down = True
        self.refuse_until = now + self.retry_after_s
