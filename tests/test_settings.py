"""Settings: read from the environment, wrong values named, every key documented."""

from dataclasses import fields
from pathlib import Path

import pytest

from shared.config import Settings, read_env_file
from shared.exceptions import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_phase_27_spec():
    s = Settings.from_env({})
    assert (s.heartbeat_interval_ms, s.debounce_window_ms, s.realtime_enabled) == (30000, 500, True)


def test_a_wrong_value_names_its_key():
    with pytest.raises(ConfigError, match="SSE_DEBOUNCE_WINDOW"):
        Settings.from_env({"SSE_DEBOUNCE_WINDOW": "soon"})
    with pytest.raises(ConfigError, match="REALTIME_ENABLED"):
        Settings.from_env({"REALTIME_ENABLED": "maybe"})


def test_env_example_lists_every_setting_with_a_comment():
    example = read_env_file(str(ROOT / ".env.example"))
    text = (ROOT / ".env.example").read_text()
    for f in fields(Settings):
        key = f.metadata["env"]
        assert key in example, f"{key} is missing from .env.example"
        line_before = text.split(f"\n{key}=")[0].rstrip().splitlines()[-1]
        assert line_before.startswith("#"), f"{key} has no comment line in .env.example"
    Settings.from_env(example)  # and its values parse


def test_per_type_debounce_windows_override_the_default_window():
    assert Settings.from_env({}).debounce_windows == {
        "INVENTORY_CHANGE": 500, "ORDER_RECEIVED": 0, "PRICE_CHANGE": 500, "LISTING_UPDATE": 500}
    s = Settings.from_env({"SSE_DEBOUNCE_WINDOW": "300", "SSE_DEBOUNCE_WINDOWS": "ORDER_RECEIVED:0,PRICE_CHANGE:2000"})
    assert s.debounce_windows == {
        "INVENTORY_CHANGE": 300, "ORDER_RECEIVED": 0, "PRICE_CHANGE": 2000, "LISTING_UPDATE": 300}
    assert Settings.from_env(s.env_items()).debounce_windows == s.debounce_windows
    assert Settings.from_env({"SSE_DEBOUNCE_WINDOWS": ""}).debounce_windows["ORDER_RECEIVED"] == 500


@pytest.mark.parametrize("raw", ["ORDERS:0", "ORDER_RECEIVED", "PRICE_CHANGE:-5", "PRICE_CHANGE:soon"])
def test_a_wrong_per_type_window_names_its_key(raw):
    with pytest.raises(ConfigError, match="SSE_DEBOUNCE_WINDOWS"):
        Settings.from_env({"SSE_DEBOUNCE_WINDOWS": raw})
