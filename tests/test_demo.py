"""The newcomer's demo, run as a person runs it: start, log in, read the Outbox, watch the story, press Ctrl-C."""

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from webapp.core.embedded_redis import free_port, start_embedded_redis

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "demo-test-secret-key-that-is-long-enough"
STOPPED = "Hookline demo stopped"


def demo_environment(**settings) -> dict[str, str]:
    """The environment of a newcomer's shell: no REDIS_URL or DATABASE_URL unless given."""
    env = {**os.environ, "SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1", **settings}
    for name in ("REDIS_URL", "DATABASE_URL"):
        if name not in settings:
            env.pop(name, None)
    return env


def start_demo(instance: Path, *flags: str, **settings) -> tuple[subprocess.Popen, str]:
    """Start the demo on free ports; return the process and the web server's base URL."""
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "webapp.demo", "--instance", str(instance), "--port", str(port),
         "--receiver-port", str(free_port()), "--mail-port", str(free_port()), *flags],
        cwd=ROOT, env=demo_environment(**settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    return demo, f"http://127.0.0.1:{port}"


def read_until(process, pattern: str, timeout: float, seen: str = "") -> str:
    """Read the demo's output until ``pattern`` (a regular expression) matches; return all of it."""
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while not re.search(pattern, seen):
        assert time.monotonic() < deadline, f"{pattern!r} not printed within {timeout} s:\n{seen}"
        assert process.poll() is None, f"the demo exited with {process.returncode}:\n{seen}"
        chunk = process.stdout.read()
        seen += chunk.decode() if chunk else ""
        time.sleep(0.1)
    return seen


def press_ctrl_c(demo) -> tuple[str, float]:
    """Ctrl-C as a terminal sends it (to the whole foreground process group); return the rest of the output."""
    started = time.monotonic()
    os.killpg(demo.pid, signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    return rest.decode(), time.monotonic() - started


def log_in(base: str) -> requests.Session:
    browser = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.get(f"{base}/login").text).group(1)
    logged_in = browser.post(f"{base}/login", data={"email": "owner@example.com", "password": "hookline-demo",
                                                     "csrf_token": token})
    assert logged_in.status_code == 200 and "Outbox (demo)" in logged_in.text
    return browser


def send_test_alert(browser: requests.Session, base: str, app_slug: str) -> str:
    """Press 'Send test alert' on the app's page and wait for the result it shows."""
    page = browser.get(f"{base}/orgs/demo/apps/{app_slug}").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    result = browser.post(f"{base}/orgs/demo/apps/{app_slug}/test-alert", headers={"HX-Request": "true",
                                                                                   "X-CSRFToken": token}).text
    deadline = time.monotonic() + 20
    while "waiting for the worker" in result:
        assert time.monotonic() < deadline, result
        time.sleep(0.3)
        result = browser.get(base + re.search(r'hx-get="([^"]+)"', result).group(1).replace("&amp;", "&")).text
    return result


def end(demo) -> None:
    """Stop a demo a failed test left running: Ctrl-C first (its children run in sessions of their own)."""
    if demo.poll() is None:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    demo.stdout.close()


def assert_stopped_in_order(rest: str, took: float, demo, logs: Path, ports) -> None:
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest and "Error" not in rest, rest
    assert rest.strip().splitlines()[-1].startswith(STOPPED), rest  # the last word, after the children stopped
    worker = (logs / "worker.log").read_text()
    assert worker.index("worker.stopping") < worker.index("worker.stopped")
    assert took < 30
    for busy in ports:  # everything it started has stopped
        assert not _listening(busy), busy


@pytest.fixture
def own_redis(tmp_path_factory):
    """A Redis of this test's own: a shared one may have other tests' workers taking the demo's jobs."""
    url, process = start_embedded_redis(tmp_path_factory.mktemp("redis"), persist=False)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_demo_runs_shows_its_mail_and_stops_cleanly_on_ctrl_c(tmp_path, own_redis):
    redis_url = own_redis
    demo, base = start_demo(tmp_path, REDIS_URL=redis_url)
    receiver_port, mail_port = (int(demo.args[demo.args.index(flag) + 1])
                                for flag in ("--receiver-port", "--mail-port"))
    try:
        output = read_until(demo, "Stop with Ctrl-C.", 90)
        assert f"Redis: {redis_url} (REDIS_URL)" in output  # the Redis it was given on purpose
        assert "--story" in output  # the way to see an app warned about and disabled

        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "Action required: Fix your Demo app", "h@l", "owner@example.com"
        message.set_content("Open http://127.0.0.1/ to fix it.")
        message.add_alternative("<p style='color:#b42318'>Open the app to fix it.</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", mail_port, timeout=5) as smtp:
            smtp.send_message(message)

        browser = log_in(base)
        assert "HTTP 200" in send_test_alert(browser, base, "demo-receiver")  # the welcome's first step
        outbox = browser.get(f"{base}/demo/outbox")
        assert outbox.status_code == 200 and "Action required: Fix your Demo app" in outbox.text
        link = re.search(r'href="(/demo/outbox/\d+)"', outbox.text).group(1)
        page = browser.get(base + link)
        assert "Open http://127.0.0.1/ to fix it." in page.text and "Open the HTML version" in page.text
        html = browser.get(f"{base}{link}/html")
        assert "Open the app to fix it." in html.text and html.headers["Content-Security-Policy"].startswith("sandbox")

        rest, took = press_ctrl_c(demo)
    finally:
        end(demo)
    logs = tmp_path / "demo-logs"
    # A quiet terminal: the migrations, the receiver's requests and the servers' lines are in the logs folder.
    terminal = output + rest
    assert "alembic" not in terminal and "INFO" not in terminal and "demo receiver:" not in terminal, terminal
    assert "GET /" not in terminal and "POST /webhook" in (logs / "receiver.log").read_text()
    assert "Running upgrade" in (logs / "demo.log").read_text() and (logs / "access.log").exists()
    assert_stopped_in_order(rest, took, demo, logs, (int(base.rsplit(":", 1)[1]), receiver_port, mail_port))


def test_story_warns_then_disables_and_reset_starts_from_scratch(tmp_path):
    """The story with accelerated settings (3 timeouts disable, events every second); then ``--reset``."""
    demo, base = start_demo(tmp_path, "--story", "--story-interval", "1", BROKEN_TIMEOUT_THRESHOLD="3",
                            WEBHOOK_TIMEOUT="0.5")
    try:
        output = read_until(demo, "Stop with Ctrl-C.", 90)
        assert "Within a minute the Outbox gets a warning; in about three, the disable notice." in output
        redis_port = int(re.search(r"Redis: the demo's own at redis://127\.0\.0\.1:(\d+)/0", output).group(1))
        assert redis_port != 6379 and (tmp_path / "redis" / "redis.log").exists()
        output = read_until(demo, r"story \d:\d\d  in the Outbox: Action required: Fix your Broken receiver", 45,
                            output)
        output = read_until(demo, r"story \d:\d\d  Hookline disabled 'Broken receiver \(demo\)'", 10, output)
        assert re.search(r"story \d:\d\d  in the Outbox: Your Broken receiver \(demo\) integration is failing", output)

        browser = log_in(base)
        outbox = browser.get(f"{base}/demo/outbox").text
        assert "Your Broken receiver (demo) integration is failing" in outbox
        assert "Action required: Fix your Broken receiver (demo) integration" in outbox
        broken = browser.get(f"{base}/orgs/demo/apps/broken-receiver-demo").text
        assert "badge-disabled" in broken and "requests got no answer today" in broken
        assert 'class="log-row' in browser.get(f"{base}/orgs/demo/apps/demo-receiver").text  # the story's events
        rest, took = press_ctrl_c(demo)
        assert_stopped_in_order(rest, took, demo, tmp_path / "demo-logs", (int(base.rsplit(":", 1)[1]), redis_port))

        demo, base = start_demo(tmp_path, "--reset")
        output = read_until(demo, "Stop with Ctrl-C.", 90)
        assert "Starting from scratch: removed the demo's database, Redis data, emails and logs" in output
        browser = log_in(base)
        assert 'data-testid="empty-outbox"' in browser.get(f"{base}/demo/outbox").text
        # The new Demo receiver app has the old one's id: rows left in Redis would show under it.
        assert 'class="log-row' not in browser.get(f"{base}/orgs/demo/apps/demo-receiver").text
        assert browser.get(f"{base}/orgs/demo/apps/broken-receiver-demo").status_code == 404
        rest, took = press_ctrl_c(demo)
    finally:
        end(demo)
    assert rest.strip().splitlines()[-1].startswith(STOPPED), rest


@pytest.mark.parametrize("flag", ["--port", "--receiver-port", "--mail-port"])
def test_a_taken_port_is_named_with_its_flag_before_anything_starts(tmp_path, flag):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--port": free_port(), "--receiver-port": free_port(), "--mail-port": free_port(), flag: port}
        demo = subprocess.run(
            [sys.executable, "-m", "webapp.demo", "--instance", str(tmp_path),
             *(str(part) for pair in ports.items() for part in pair)],
            cwd=ROOT, env=demo_environment(), capture_output=True, text=True, timeout=30)
    assert demo.returncode == 1
    assert f"port {port} on 127.0.0.1 is not free" in demo.stderr and f"pass {flag} with another port" in demo.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no database, Redis, logs or emails


def test_reset_refuses_to_leave_old_data_in_a_redis_it_does_not_own(tmp_path):
    (tmp_path / "hookline.db").write_text("an earlier demo's database")
    demo = subprocess.run(
        [sys.executable, "-m", "webapp.demo", "--instance", str(tmp_path), "--reset", "--port", str(free_port()),
         "--receiver-port", str(free_port()), "--mail-port", str(free_port())],
        cwd=ROOT, env=demo_environment(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), capture_output=True,
        text=True, timeout=30)
    assert demo.returncode == 1
    assert "REDIS_URL is set" in demo.stderr and "Unset REDIS_URL to use the demo's own" in demo.stderr
    assert (tmp_path / "hookline.db").read_text() == "an earlier demo's database"  # nothing deleted


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
