"""The broker gate: after a failed send, one trial per retry period until the broker answers again."""

from __future__ import annotations

from gateway.broker_gate import BrokerGate


def test_every_send_is_tried_while_the_broker_answers() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    assert all(gate.may_send(now) for now in (0.0, 0.1, 0.2, 100.0))


def test_sends_are_refused_for_the_retry_period_after_a_failure() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.record_failure(now=10.0)
    assert not gate.may_send(10.0)
    assert not gate.may_send(14.9)


def test_one_trial_after_the_period_and_the_others_wait_for_its_outcome() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.record_failure(now=10.0)
    assert gate.may_send(15.0)  # the trial
    assert not gate.may_send(15.1)  # others, while the trial runs
    gate.record_failure(now=17.0)  # the trial failed after 2 s
    assert not gate.may_send(21.9)
    assert gate.may_send(22.0)


def test_a_successful_trial_opens_the_gate_for_every_send() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.record_failure(now=10.0)
    assert gate.may_send(15.0)
    gate.record_success()
    assert gate.may_send(15.1) and gate.may_send(15.2)


def test_a_trial_that_never_reports_back_does_not_close_the_gate_for_ever() -> None:
    gate = BrokerGate(retry_after_s=5.0)
    gate.record_failure(now=0.0)
    assert gate.may_send(5.0)
    assert not gate.may_send(9.9)
    assert gate.may_send(10.0)
