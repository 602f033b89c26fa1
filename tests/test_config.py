import json

import pytest
from cryptography.fernet import Fernet

from portal.config import ConfigError, load_config


def test_development_generates_secrets_once(tmp_path):
    first = load_config(str(tmp_path), environ={})
    second = load_config(str(tmp_path), environ={})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENCRYPTION_KEYS"] == second["ENCRYPTION_KEYS"]
    assert oct((tmp_path / "secrets.json").stat().st_mode)[-3:] == "600"
    assert first["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'bogbro.sqlite3'}"
    assert first["REDIS_URL"] == f"unix://{tmp_path / 'redis.sock'}"
    assert first["SANDBOX_ENABLED"] is True
    assert first["SESSION_COOKIE_SECURE"] is False


def test_environment_wins_over_generated_values(tmp_path):
    key = Fernet.generate_key().decode()
    config = load_config(
        str(tmp_path),
        environ={
            "SECRET_KEY": "s",
            "ENCRYPTION_KEYS": f" {key} ,{Fernet.generate_key().decode()}",
            "DATABASE_URL": "postgres://u@h/db",
            "SANDBOX_ENABLED": "0",
        },
    )
    assert config["SECRET_KEY"] == "s"
    assert config["ENCRYPTION_KEYS"][0] == key and len(config["ENCRYPTION_KEYS"]) == 2
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert config["SANDBOX_ENABLED"] is False


def test_production_refuses_to_start_without_secrets(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(str(tmp_path), environ={"PRODUCTION": "1", "SECRET_KEY": "x"})
    for name in ("ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL", "MAIL_SERVER", "PUBLIC_URL"):
        assert name in str(error.value)
    assert "SECRET_KEY" not in str(error.value)
    assert not (tmp_path / "secrets.json").exists()


def test_production_configuration(tmp_path):
    config = load_config(
        str(tmp_path),
        environ={
            "PRODUCTION": "yes",
            "SECRET_KEY": "k",
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": "postgresql://bogbro@db/bogbro",
            "REDIS_URL": "redis://cache:6379/0",
            "MAIL_SERVER": "smtp.example.com",
            "PUBLIC_URL": "https://app.bogbro.dk",
        },
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["PUBLIC_URL"] == "https://app.bogbro.dk"
    assert config["SANDBOX_ENABLED"] is False


def test_bad_encryption_keys_are_a_startup_error(tmp_path):
    (tmp_path / "secrets.json").write_text(json.dumps({"SECRET_KEY": "x", "ENCRYPTION_KEYS": "not-a-key"}))
    with pytest.raises(ConfigError, match="Fernet"):
        load_config(str(tmp_path), environ={})
