"""Configuration from the environment: strings stay strings, numbers and flags are converted."""

from __future__ import annotations

import pytest

from flexmail import create_app


@pytest.fixture
def env_app(tmp_path, monkeypatch):
    """``env_app(**FLEXMAIL_vars)``: an app built from the environment alone (no test overrides)."""

    def make(**env):
        monkeypatch.setenv("FLEXMAIL_INSTANCE_PATH", str(tmp_path / "instance"))
        monkeypatch.setenv("FLEXMAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'flexmail.db'}")
        monkeypatch.setenv("FLEXMAIL_EMBEDDED_WORKER", "false")
        for key, value in env.items():
            monkeypatch.setenv(f"FLEXMAIL_{key}", value)
        return create_app({"TESTING": True})

    return make


def test_all_digit_secrets_and_url_are_read_as_strings(env_app):
    """An all-digit secret, hash key, signing key or public URL starts the service and stays a string."""
    app = env_app(SECRET_KEYS="1234567890123456", HASH_KEY="9876543210987654", PUBLIC_URL="12345",
                  SIGNING_KEY="55555555555555555555555555555555")
    assert app.config["SECRET_KEYS"] == ["1234567890123456"]
    assert app.config["SECRET_KEY"] == "1234567890123456"
    assert app.config["HASH_KEY"] == "9876543210987654"
    assert app.config["SIGNING_KEY"] == "55555555555555555555555555555555"
    assert app.config["PUBLIC_URL"] == "12345"
    assert app.test_client().get("/health").status_code == 200
    from flexmail.services.platform.context import hash_address

    with app.app_context():
        assert len(hash_address("reader@example.com")) >= 32


def test_numbers_and_flags_from_the_environment_are_converted(env_app):
    """Keys whose default is a number or a flag are read as such; JSON-looking strings are left alone."""
    app = env_app(TRUSTED_PROXIES="1", CONFIRM_MAX_AGE="3600", EMBEDDED_WORKER="no",
                  FORM_RATE_LIMIT="5 per minute", SECRET_KEYS='["a", "b"]', HASH_KEY="true")
    assert app.config["TRUSTED_PROXIES"] == 1
    assert app.config["CONFIRM_MAX_AGE"] == 3600
    assert app.config["EMBEDDED_WORKER"] is False
    assert app.config["FORM_RATE_LIMIT"] == "5 per minute"
    assert app.config["SECRET_KEYS"] == ['["a"', '"b"]']  # a comma list, as documented: not JSON
    assert app.config["HASH_KEY"] == "true"
