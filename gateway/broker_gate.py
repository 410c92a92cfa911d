"""When to try the Celery broker again after a send failed: a pure gate driven by explicit times.

A stored webhook delivery that could not be queued stays PENDING and the sweep queues it
later, so nothing depends on every delivery trying the broker. Trying costs about 2 s when
the broker is down (the connection attempt and its retries), and the sends queue behind one
another for a free producer: a gateway that tried on every delivery during an outage would
answer each one seconds late. So after a failure the gate refuses sends for ``retry_after_s``;
then it lets one send through as a trial, and refuses the others until that trial succeeds
(``record_success`` opens the gate for all) or fails (``record_failure`` closes it again).

Invariant: while the broker is known down, at most one send per ``retry_after_s`` is tried.
"""

from __future__ import annotations

from dataclasses import dataclass

BROKER_RETRY_AFTER_S = 5.0


@dataclass
class BrokerGate:
    retry_after_s: float = BROKER_RETRY_AFTER_S
    down: bool = False
    refuse_until: float = 0.0

    def may_send(self, now: float) -> bool:
        """Whether a send should be tried at ``now`` (a True while down claims the one trial)."""
        if not self.down:
            return True
        if now < self.refuse_until:
            return False
        self.refuse_until = now + self.retry_after_s  # the others wait while this trial runs
        return True

    def record_failure(self, now: float) -> None:
        self.down = True
        self.refuse_until = now + self.retry_after_s

    def record_success(self) -> None:
        self.down = False
        self.refuse_until = 0.0
