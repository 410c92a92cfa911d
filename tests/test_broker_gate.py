"""The broker gate: after a failed send, one trial per retry period; never a pile of sends behind a slow one."""

from __future__ import annotations

from gateway.broker_gate import BrokerGate


def gate() -> BrokerGate:
    return BrokerGate(retry_after_s=5.0, slow_after_s=0.25, max_in_flight=3)


def fail_once(g: BrokerGate, start: float, end: float) -> None:
    ticket = g.begin(start)
    assert ticket is not None
    g.failed(ticket, now=end)


def test_every_send_is_tried_while_the_broker_answers() -> None:
    g = gate()
    for now in (0.0, 0.1, 0.2, 100.0):
        ticket = g.begin(now)
        assert ticket is not None
        g.succeeded(ticket)
    assert g.in_flight == []


def test_sends_are_refused_for_the_retry_period_after_a_failure() -> None:
    g = gate()
    fail_once(g, 10.0, 12.0)
    assert g.begin(12.0) is None
    assert g.begin(16.9) is None


def test_one_trial_after_the_period_and_the_others_wait_for_its_outcome() -> None:
    g = gate()
    fail_once(g, 10.0, 12.0)
    trial = g.begin(17.0)
    assert trial is not None
    assert g.begin(17.1) is None  # others, while the trial runs
    g.failed(trial, now=19.0)
    assert g.begin(23.9) is None
    second = g.begin(24.0)
    assert second is not None
    g.succeeded(second)
    assert g.begin(24.1) is not None and g.begin(24.2) is not None  # open for all again


def test_a_send_running_longer_than_the_slow_limit_holds_the_others_back() -> None:
    g = gate()
    first = g.begin(0.0)
    assert g.begin(0.2) is not None  # 0.2 s is still a normal wait
    assert g.begin(0.3) is None  # the first has run 0.3 s: the broker is not answering
    assert first is not None
    g.succeeded(first)


def test_no_more_than_max_in_flight_sends_wait_at_once() -> None:
    g = gate()
    assert all(g.begin(0.0) is not None for _ in range(3))
    assert g.begin(0.01) is None


def test_a_trial_that_never_reports_back_does_not_close_the_gate_for_ever() -> None:
    g = gate()
    fail_once(g, 0.0, 0.0)
    assert g.begin(5.0) is not None
    assert g.begin(9.9) is None
    assert g.begin(10.0) is not None
