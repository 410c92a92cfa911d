"""Whether to try the Celery broker for a delivery now: a pure gate driven by explicit times.

A stored webhook delivery that is not queued stays PENDING and the sweep queues it later, so
nothing depends on every delivery trying the broker. Trying costs about 2 s when the broker is
down (redis-py retries a refused connection with backoff), and sends past the producer pool's
size wait for one another: a gateway that tried on every delivery during an outage would answer
each one seconds late. So the gate refuses a send

* after a failure, for ``retry_after_s``; then it lets one send through as a trial and refuses
  the others until that trial succeeds (``succeeded`` opens the gate for all) or fails;
* while a send has been running for more than ``slow_after_s`` (the broker is not answering:
  the failure is on its way), or ``max_in_flight`` sends are running already.

A send normally takes a millisecond, so the last two refuse nothing while the broker answers.
Invariant: while the broker is known down, at most one send per ``retry_after_s`` is tried, and
at the start of an outage at most ``max_in_flight`` deliveries wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BROKER_RETRY_AFTER_S = 5.0
SLOW_SEND_S = 0.25
MAX_SENDS_IN_FLIGHT = 10  # Celery's producer pool (broker_pool_limit)


@dataclass
class BrokerGate:
    retry_after_s: float = BROKER_RETRY_AFTER_S
    slow_after_s: float = SLOW_SEND_S
    max_in_flight: int = MAX_SENDS_IN_FLIGHT
    down: bool = False
    refuse_until: float = 0.0
    in_flight: list[float] = field(default_factory=list)  # start times of the sends running

    def begin(self, now: float) -> float | None:
        """A ticket for a send at ``now`` (pass it to ``succeeded``/``failed``), or None: do not send."""
        if self.down:
            if now < self.refuse_until:
                return None
            self.refuse_until = now + self.retry_after_s  # the others wait while this trial runs
        elif self.in_flight and (len(self.in_flight) >= self.max_in_flight
                                 or now - min(self.in_flight) > self.slow_after_s):
            return None
        self.in_flight.append(now)
        return now

    def succeeded(self, ticket: float) -> None:
        self.in_flight.remove(ticket)
        self.down = False
        self.refuse_until = 0.0

    def failed(self, ticket: float, now: float) -> None:
        self.in_flight.remove(ticket)
        self.down = True
        self.refuse_until = now + self.retry_after_s
