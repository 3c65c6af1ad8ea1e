"""Every stream setting is type- and range-checked; a bad one is a one-line ConfigError naming file and key."""
import pytest

from stream.config import StreamConfig, load_config
from stream.errors import ConfigError


@pytest.mark.parametrize("text, key", [
    ("poll_ms: -5", "poll_ms"),  # used to hang `live`
    ("poll_ms: 0", "poll_ms"),
    ("stride: abc", "stride"),
    ("stride: true", "stride"),
    ("host: 'bad host'", "host"),
    ("host: 127.0.0.1; rm -rf", "host"),
    ("frames_port: 70000", "frames_port"),
    ("events_port: -1", "events_port"),
    ("frames_port: 5555\nwindows_port: 5555", "ports must differ"),
    ("frames_hwm: 0", "frames_hwm"),
    ("adopt_share: 0", "adopt_share"),
    ("switch_share: 1.5", "switch_share"),
    ("switch_margin: -0.1", "switch_margin"),
    ("heartbeat_s: 0", "heartbeat_s"),
    ("fps: .nan", "finite"),
    ("max_window_age_s: .inf", "finite"),
    ("restart_budget: 0", "restart_budget"),
    ("orphan_timeout_s: 0.1", "orphan_timeout_s"),
    ("device: gpu9", "device"),
    ("layout: nonsense", "layout"),
    ("accept_score: high", "accept_score"),
    ("max_tracks: 0", "max_tracks"),
    ("1: 2", "unknown"),
])
def test_bad_values_are_one_line_config_errors(tmp_path, text, key):
    p = tmp_path / "stream.yaml"
    p.write_text(text + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert key in msg and str(p) in msg and "\n" not in msg


def test_defaults_and_shipped_config_pass():
    assert load_config() == StreamConfig().check()
    cfg = load_config(None, device="cpu")
    assert cfg.device == "cpu"
    assert StreamConfig(host="localhost").check() and StreamConfig(host="::1").check()
