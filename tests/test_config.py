import pytest

from webapp import ConfigError, create_app
from webapp.config import load_settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_TIMEOUT", "soon"),
        ("WEBHOOK_TIMEOUT", "0"),
        ("MAIL_PORT", "99999"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("BASE_URL", "hookline.example.com"),
        ("WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("DATABASE_URL", "hookline.db"),
    ],
)
def test_bad_setting_stops_start_up_naming_it(name, value):
    with pytest.raises(ConfigError, match=name):
        create_app({name: value})


def test_settings_come_from_the_environment():
    settings = load_settings(environ={"WEBHOOK_TIMEOUT": "2.5", "WEBHOOK_ALLOW_PRIVATE": "yes", "BASE_URL": "https://h.example/"})
    assert settings["WEBHOOK_TIMEOUT"] == 2.5
    assert settings["WEBHOOK_ALLOW_PRIVATE"] is True
    assert settings["BASE_URL"] == "https://h.example"


def test_defaults():
    settings = load_settings(environ={})
    assert settings["WEBHOOK_TIMEOUT"] == 1.0
    assert settings["WEBHOOK_ALLOW_PRIVATE"] is False
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"
