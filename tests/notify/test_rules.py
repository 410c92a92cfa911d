"""Which events each target is told about, the rules file, backoff and target configuration (pure)."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.realtime import RealTimeEvent
from tasks.notify.delivery import backoff
from tasks.notify.rules import default_rule, load_rules
from tasks.notify.targets import sign_standard_webhook, targets_from_settings


def ev(kind: str, action: str = "updated", **data: object) -> RealTimeEvent:
    return RealTimeEvent.create(kind, 1, action, data)  # type: ignore[arg-type]


def test_default_rules():
    rule = default_rule(Settings.from_env({"NOTIFY_EVENTS": "ORDER_RECEIVED,INVENTORY_CHANGE,PRICE_CHANGE",
                                           "NOTIFY_PRICE_CHANGE_PERCENT": "15"}))
    assert rule.wants(ev("ORDER_RECEIVED", "created", marketplace="EBAY"))
    assert not rule.wants(ev("ORDER_RECEIVED", "updated", acknowledged=True))
    assert rule.wants(ev("INVENTORY_CHANGE", isAvailable=False))
    assert not rule.wants(ev("INVENTORY_CHANGE", isAvailable=True))
    assert rule.wants(ev("PRICE_CHANGE", changePercent=15.0)) and rule.wants(ev("PRICE_CHANGE", changePercent=-20))
    assert not rule.wants(ev("PRICE_CHANGE", changePercent=14.9))
    assert not default_rule(Settings.from_env({})).wants(ev("PRICE_CHANGE", changePercent=99))  # not in NOTIFY_EVENTS
    with pytest.raises(ValueError, match="ORDERS"):
        default_rule(Settings.from_env({"NOTIFY_EVENTS": "ORDERS"}))


def test_rules_file_narrows_per_target(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[targets.discord]\nevents = ["ORDER_RECEIVED"]\nmarketplaces = ["joom"]\n'
                    '[targets.webhook]\ninventory_only_unavailable = false\n')
    rules = load_rules(Settings.from_env({"NOTIFY_RULES_FILE": str(path)}), ["discord", "line", "webhook"])
    assert not rules["discord"].wants(ev("INVENTORY_CHANGE", isAvailable=False))
    assert rules["discord"].wants(ev("ORDER_RECEIVED", "created", marketplace="JOOM"))
    assert not rules["discord"].wants(ev("ORDER_RECEIVED", "created", marketplace="EBAY"))
    assert rules["webhook"].wants(ev("INVENTORY_CHANGE", isAvailable=True))
    assert rules["line"] == default_rule(Settings.from_env({}))
    path.write_text("[targets.pager]\nevents = []\n")
    with pytest.raises(ValueError, match="no configured target named pager"):
        load_rules(Settings.from_env({"NOTIFY_RULES_FILE": str(path)}), ["discord"])
    path.write_text("[targets.discord]\ncolour = 'red'\n")
    with pytest.raises(ValueError, match="colour"):
        load_rules(Settings.from_env({"NOTIFY_RULES_FILE": str(path)}), ["discord"])


def test_backoff_doubles_with_jitter_up_to_the_cap():
    assert backoff(1, 1.0, 60, rng=lambda: 0.0) == 0.5 and backoff(1, 1.0, 60, rng=lambda: 0.999) < 1.0
    assert backoff(4, 1.0, 60, rng=lambda: 0.999) == pytest.approx(8.0, rel=0.01)
    assert backoff(20, 1.0, 60, rng=lambda: 0.999) <= 60


def test_half_configured_targets_are_refused():
    with pytest.raises(ValueError, match="NOTIFY_LINE_TO"):
        targets_from_settings(Settings.from_env({"NOTIFY_LINE_CHANNEL_TOKEN": "t"}))
    with pytest.raises(ValueError, match="whsec_"):
        targets_from_settings(Settings.from_env({"NOTIFY_WEBHOOK_URL": "http://x", "NOTIFY_WEBHOOK_SECRET": "abc"}))
    assert [t.name for t in targets_from_settings(Settings.from_env({
        "NOTIFY_ESCALATION_DISCORD_WEBHOOK_URL": "http://d"}), escalation=True)] == ["escalation-discord"]


def test_signature_matches_the_standard_webhooks_library():
    from standardwebhooks.webhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"type":"ORDER_RECEIVED"}'
    sig = sign_standard_webhook(secret, "msg_1", "1700000000", body)
    from datetime import UTC, datetime
    assert Webhook(secret).sign("msg_1", datetime.fromtimestamp(1700000000, UTC), body.decode()) == sig
