"""The broker gate: after a failed send, one trial per retry period until the broker answers again."""

from __future__ import annotations

from gateway.broker_gate import BrokerGate


def test_every_send_is_tried_while_the_broker_answers() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    assert all(gate.begin(now) for now in (0.0, 0.1, 0.2, 100.0))


def test_sends_are_refused_for_the_retry_period_after_a_failure() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.failed(now=12.0)
    assert not gate.begin(12.0)
    assert not gate.begin(16.9)


def test_one_trial_after_the_period_and_the_others_wait_for_its_outcome() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.failed(now=12.0)
    assert gate.begin(17.0)  # the trial
    assert not gate.begin(17.1)  # the others, while the trial runs
    gate.failed(now=19.0)
    assert not gate.begin(23.9)
    assert gate.begin(24.0)
    gate.succeeded()
    assert gate.begin(24.1) and gate.begin(24.2)  # open for all again


def test_a_trial_that_never_reports_back_does_not_close_the_gate_for_ever() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.failed(now=0.0)
    assert gate.begin(5.0)
    assert not gate.begin(9.9)
    assert gate.begin(10.0)
