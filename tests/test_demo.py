"""The newcomer's demo, run as a person runs it: start, log in, read the Outbox, press Ctrl-C."""

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import requests

from webapp.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent


def read_until(process, text: str, timeout: float) -> str:
    """Read the demo's output until ``text`` appears; return all of it."""
    seen = ""
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while text not in seen:
        assert time.monotonic() < deadline, f"{text!r} not printed within {timeout} s:\n{seen}"
        assert process.poll() is None, f"the demo exited with {process.returncode}:\n{seen}"
        chunk = process.stdout.read()
        seen += chunk.decode() if chunk else ""
        time.sleep(0.1)
    return seen


def test_demo_runs_shows_its_mail_and_stops_cleanly_on_ctrl_c(tmp_path, redis_url):
    port, receiver_port, mail_port = free_port(), free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "SECRET_KEY": "demo-test-secret-key-that-is-long-enough",
           "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "webapp.demo", "--instance", str(tmp_path), "--port", str(port),
         "--receiver-port", str(receiver_port), "--mail-port", str(mail_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output = read_until(demo, "Stop with Ctrl-C.", 90)
        # The welcome comes last: the worker's start-up line is above it, not scrolled past it.
        assert output.index("worker.started") < output.index("Hookline is running")
        assert "GET /" not in output  # gunicorn's access log goes to a file, not the terminal
        assert (tmp_path / "demo-logs" / "access.log").exists()

        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "Action required: Fix your Demo app", "h@l", "owner@example.com"
        message.set_content("Open http://127.0.0.1/ to fix it.")
        message.add_alternative("<p style='color:#b42318'>Open the app to fix it.</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", mail_port, timeout=5) as smtp:
            smtp.send_message(message)

        base = f"http://127.0.0.1:{port}"
        browser = requests.Session()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', browser.get(f"{base}/login").text).group(1)
        logged_in = browser.post(f"{base}/login", data={"email": "owner@example.com", "password": "hookline-demo",
                                                         "csrf_token": token})
        assert logged_in.status_code == 200 and "Outbox (demo)" in logged_in.text
        outbox = browser.get(f"{base}/demo/outbox")
        assert outbox.status_code == 200 and "Action required: Fix your Demo app" in outbox.text
        link = re.search(r'href="(/demo/outbox/\d+)"', outbox.text).group(1)
        page = browser.get(base + link)
        assert "Open http://127.0.0.1/ to fix it." in page.text and "Open the HTML version" in page.text
        html = browser.get(f"{base}{link}/html")
        assert "Open the app to fix it." in html.text and html.headers["Content-Security-Policy"].startswith("sandbox")

        started = time.monotonic()
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole foreground process group
        rest, _ = demo.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    rest = rest.decode()
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest and "Error" not in rest, rest
    assert rest.index("worker.stopping") < rest.index("worker.stopped"), rest
    assert took < 30
    for busy in (port, receiver_port, mail_port):  # everything it started has stopped
        assert not _listening(busy), busy


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
