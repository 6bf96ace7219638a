
import pytest
from pydantic import ValidationError

from inferwatch.settings import Settings, StackNotRunning
from inferwatch.settings_doc import settings_markdown

def test_settings_doc_covers_every_field():
    text = settings_markdown()
    for name in Settings.model_fields:
        assert f"| `{name}` | `INFERWATCH_{name.upper()}` |" in text


def test_env_overrides_config_file_overrides_default(tmp_path, monkeypatch):
    config = tmp_path / "iw.toml"
    config.write_text('window_seconds = 30\nevents_topic = "from-file"\n')
    monkeypatch.setenv("INFERWATCH_CONFIG", str(config))
    monkeypatch.setenv("INFERWATCH_WINDOW_SECONDS", "15")
    settings = Settings()
    assert settings.window_seconds == 15
    assert settings.events_topic == "from-file"
    assert settings.dlq_topic == "llm.inference.dlq"


def test_bad_values_and_missing_config_file_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERWATCH_WINDOW_SECONDS", "0")
    with pytest.raises(ValidationError, match="window_seconds"):
        Settings()
    monkeypatch.delenv("INFERWATCH_WINDOW_SECONDS")
    monkeypatch.setenv("INFERWATCH_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        Settings()


def test_unknown_key_in_config_file_is_rejected(tmp_path, monkeypatch):
    config = tmp_path / "iw.toml"
    config.write_text("windw_seconds = 30\n")
    monkeypatch.setenv("INFERWATCH_CONFIG", str(config))
    with pytest.raises(ValidationError, match="windw_seconds"):
        Settings()


def test_endpoints_come_from_the_local_stack_or_a_clear_error(tmp_path):
    settings = Settings(state_dir=tmp_path)
    with pytest.raises(StackNotRunning, match="inferwatch up"):
        settings.resolved_kafka_bootstrap
    settings.run_dir.mkdir()
    settings.stack_file.write_text('{"kafka_bootstrap": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:2/0"}')
    assert settings.resolved_kafka_bootstrap == "127.0.0.1:1"
    assert Settings(state_dir=tmp_path, redis_url="redis://elsewhere").resolved_redis_url == "redis://elsewhere"
