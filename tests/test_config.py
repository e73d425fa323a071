import multiprocessing
from pathlib import Path

import pytest

from webapp import ConfigError, create_app
from webapp.core.config import instance_secret_key, load_settings


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
        ("WEBHOOK_UNANSWERED_PAUSE", "-1"),
        ("WEBHOOK_UNANSWERED_PAUSE", "61"),
        ("WEBHOOK_UNANSWERED_PAUSE", "a while"),
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
    assert settings["WEBHOOK_UNANSWERED_PAUSE"] == 1.0


def test_short_secret_key_stops_start_up_without_repeating_it():
    with pytest.raises(ConfigError, match="SECRET_KEY is not valid: must be at least 32 bytes") as raised:
        create_app({"SECRET_KEY": "only-31-bytes-long-secret-key-x"})
    assert "only-31" not in str(raised.value)


def test_secret_key_of_32_bytes_is_accepted():
    assert load_settings(environ={"SECRET_KEY": "k" * 32})["SECRET_KEY"] == "k" * 32


def test_short_metrics_token_stops_start_up_without_repeating_it():
    token = "a" * 31
    with pytest.raises(ConfigError, match="METRICS_TOKEN is not valid: must be at least 32 characters") as raised:
        create_app({"METRICS_TOKEN": token})
    assert token not in str(raised.value)
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_settings(environ={"METRICS_TOKEN": "x"})


def test_metrics_token_of_32_characters_is_accepted_and_empty_means_unset():
    assert load_settings(environ={"METRICS_TOKEN": "t" * 32})["METRICS_TOKEN"] == "t" * 32
    assert load_settings(environ={"METRICS_TOKEN": ""})["METRICS_TOKEN"] is None


def _start_like_a_process(instances: list[str], start, results) -> None:
    """Be one of several starting processes: for each fresh instance, wait for the others, then read its key."""
    for instance in instances:
        start.wait()
        try:
            results.put((instance, instance_secret_key(Path(instance))))
        except Exception as exc:  # reported to the test, which shows it
            results.put((instance, repr(exc)))


def test_processes_starting_at_once_share_one_complete_instance_key(tmp_path):
    instances = [tmp_path / f"instance-{number}" for number in range(30)]
    for instance in instances:
        instance.mkdir()
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4), context.Queue()
    starters = [context.Process(target=_start_like_a_process, args=([str(i) for i in instances], start, results))
                for _ in range(4)]
    for process in starters:
        process.start()
    keys: dict[str, list[str]] = {}
    for _ in range(4 * len(instances)):
        instance, key = results.get(timeout=120)
        keys.setdefault(instance, []).append(key)
    for process in starters:
        process.join(timeout=10)
    for instance in instances:
        read = keys[str(instance)]
        assert len(set(read)) == 1 and len(read[0]) == 64, f"{instance.name}: {read}"
        assert [path.name for path in instance.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_instance_key_file_that_is_too_short_stops_start_up(tmp_path):
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        instance_secret_key(tmp_path)


def test_a_postgresql_connect_is_bounded_unless_the_url_says_otherwise():
    """A database host that does not answer fails a connect in seconds, not the system's two minutes."""
    from webapp import DATABASE_CONNECT_TIMEOUT, engine_options
    from webapp.core.config import load_settings

    def options(url):
        return engine_options(load_settings({"DATABASE_URL": url}))

    assert options("postgresql+psycopg://hookline@db/hookline")["connect_args"] == {
        "connect_timeout": DATABASE_CONNECT_TIMEOUT}
    assert "connect_args" not in options("postgresql+psycopg://hookline@db/hookline?connect_timeout=2")
    assert "connect_args" not in options("sqlite:////tmp/hookline.db")
