"""Settings: read from the environment, wrong values named, every key documented."""

from pathlib import Path

import pytest

from shared.config import Settings, read_env_file
from shared.exceptions import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_follow_the_original_spec():
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
    for key in Settings.env_keys().values():
        assert key in example, f"{key} is missing from .env.example"
        line_before = text.split(f"\n{key}=")[0].rstrip().splitlines()[-1]
        assert line_before.startswith("#"), f"{key} has no comment line in .env.example"
    assert set(example) <= set(Settings.env_keys().values()), "a key in .env.example is not a setting"
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


def test_an_integer_below_its_bound_names_its_key_and_the_bound():
    with pytest.raises(ConfigError, match=r"SSE_HEARTBEAT_INTERVAL.*greater than or equal to 10.*'3'"):
        Settings.from_env({"SSE_HEARTBEAT_INTERVAL": "3"})


def test_lists_flags_and_choices_read_as_written_in_an_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('API_KEYS="a, b,,c"\nexport REALTIME_ENABLED=\nLOG_LEVEL=DEBUG\n# a comment\n')
    s = Settings.from_env(read_env_file(str(env_file)))
    assert (s.api_keys, s.realtime_enabled, s.log_level) == (("a", "b", "c"), False, "debug")


def test_the_process_environment_wins_over_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("SSE_RETRY=1000\nSSE_BATCH_MAX_EVENTS=7\n")
    monkeypatch.setenv("SSE_RETRY", "2000")
    s = Settings.from_env(env_file=str(env_file), heartbeat_interval_ms=50)
    assert (s.retry_ms, s.batch_max_events, s.heartbeat_interval_ms) == (2000, 7, 50)


def test_sentinels_without_a_master_name_the_missing_key():
    with pytest.raises(ConfigError, match="REDIS_SENTINEL_MASTER"):
        Settings.from_env({"REDIS_SENTINELS": "10.0.0.5:26379"})
    with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
        Settings.from_env({"REDIS_SENTINELS": "nohost", "REDIS_SENTINEL_MASTER": "m"})
