"""Service settings come from FIRSTSPIKE_* variables."""

import os

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("FIRSTSPIKE_MODEL_STORE", str(tmp_path))
    monkeypatch.setenv("FIRSTSPIKE_DEFAULT_MODELS", "digits, digits-dvs")
    monkeypatch.setenv("FIRSTSPIKE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("FIRSTSPIKE_THREADS", "2")
    settings = Settings()
    assert settings.model_store == tmp_path
    assert settings.default_models == ["digits", "digits-dvs"]
    assert (settings.max_body_bytes, settings.threads) == (2048, 2)


def test_defaults(monkeypatch):
    for name in [n for n in os.environ if n.startswith("FIRSTSPIKE_")]:  # a test run may export some
        monkeypatch.delenv(name)
    settings = Settings()
    assert settings.runtime == "auto" and settings.default_models == []
    assert str(settings.model_store) == "model_store"


def test_connection_limits(monkeypatch):
    defaults = Settings()
    assert (defaults.max_streams, defaults.body_timeout_s, defaults.header_timeout_s) == (64, 30.0, 10.0)
    monkeypatch.setenv("FIRSTSPIKE_MAX_STREAMS", "3")
    monkeypatch.setenv("FIRSTSPIKE_BODY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("FIRSTSPIKE_HEADER_TIMEOUT_S", "4")
    settings = Settings()
    assert (settings.max_streams, settings.body_timeout_s, settings.header_timeout_s) == (3, 2.5, 4.0)


@pytest.mark.parametrize(
    "name, value",
    [
        ("FIRSTSPIKE_THREADS", "0"),
        ("FIRSTSPIKE_RUNTIME", "tensorrt"),
        ("FIRSTSPIKE_MAX_BODY_BYTES", "lots"),
        ("FIRSTSPIKE_MAX_STREAMS", "0"),
        ("FIRSTSPIKE_BODY_TIMEOUT_S", "0"),
        ("FIRSTSPIKE_HEADER_TIMEOUT_S", "-1"),
    ],
)
def test_invalid_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    "key, accepted", [("", True), ("x" * 16, True), ("x" * 15, False), ("secret", False)]
)
def test_an_api_key_is_long_enough_or_empty(monkeypatch, key, accepted):
    monkeypatch.setenv("FIRSTSPIKE_API_KEY", key)
    if accepted:
        assert Settings().api_key == (key or None)  # empty: admin endpoints disabled
    else:
        with pytest.raises(ValidationError, match="at least 16 characters"):
            Settings()


def test_image_and_request_limits(monkeypatch):
    defaults = Settings()
    assert defaults.image_limits.max_pixels == 4096 * 4096 and defaults.image_limits.max_side == 8192
    assert defaults.request_rows == 64 and 1 <= defaults.pool_threads <= 4
    monkeypatch.setenv("FIRSTSPIKE_MAX_QUEUE", "16")
    monkeypatch.setenv("FIRSTSPIKE_WORK_THREADS", "3")
    settings = Settings()
    assert settings.request_rows == 16 and settings.pool_threads == 3  # never more rows than the queue holds
