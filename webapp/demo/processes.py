"""The demo's processes: start the demo receiver, the web server and the worker, watch them, stop them in order."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from ..core.config import PROJECT_ROOT
from .story import Story

# The terminal shows only the demo's own lines; each child writes to its file in instance/demo-logs/.
CHILD_LOGS = {"the demo receiver": "receiver.log", "the web server": "web.log", "the worker": "worker.log"}


def start_children(args, env: dict[str, str], secret_file: Path, logs: Path) -> list[tuple[str, subprocess.Popen]]:
    """Start the demo receiver, the web server and the worker, each writing to its log file in ``logs``."""
    python = sys.executable
    web_log = logs / CHILD_LOGS["the web server"]
    commands = [
        ("the demo receiver", [python, "-m", "webapp.demo.receiver", "--port", str(args.receiver_port),
                               "--secret-file", str(secret_file)]),
        ("the web server", [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers", "2",
                            "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                            "--access-logfile", str(logs / "access.log"), "--error-logfile", str(web_log),
                            "--no-control-socket", "webapp:create_app()"]),
        ("the worker", [python, str(PROJECT_ROOT / "worker.py")]),
    ]
    children = []
    for name, command in commands:
        with open(logs / CHILD_LOGS[name], "a") as log:  # the child keeps its own copy of the file open
            # A session of its own: Ctrl-C reaches only this supervisor, which stops the children in order.
            children.append((name, subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True,
                                                    stdout=log, stderr=subprocess.STDOUT)))
    return children


def wait_until_ready(base_url: str, children, stopping: threading.Event, timeout: float = 60.0) -> int | None:
    """Wait until the web server answers and a worker runs (``/readyz``), so the welcome is printed last.

    Return None, or an exit status if a child died first (or 0 on Ctrl-C).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        code = exited_child(children)
        if code is not None:
            return code
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1):
                return None
        except OSError:
            time.sleep(0.2)
    if stopping.is_set():
        return 0
    print(f"hookline: Hookline was not ready at {base_url}/readyz within {timeout:.0f} s; stopping.", file=sys.stderr)
    return 1


def exited_child(children) -> int | None:
    """Say which child exited, and where its log is; return the demo's exit status then, else None."""
    for name, child in children:
        if child.poll() is not None:
            print(f"hookline: {name} exited with status {child.returncode} (see {CHILD_LOGS[name]} in the demo's "
                  "logs folder); stopping.", file=sys.stderr)
            return child.returncode or 1
    return None


def supervise(children, stopping: threading.Event, story: Story | None) -> int:
    """Wait until Ctrl-C/SIGTERM (status 0) or until a child exits (its status); move the story along meanwhile."""
    while not stopping.is_set():
        code = exited_child(children)
        if code is not None:
            return code
        if story:
            story.advance(time.monotonic())
        stopping.wait(0.3)
    print("\nStopping: the worker finishes its deliveries in flight first.", flush=True)
    return 0


def stop(children) -> None:
    """Stop the children newest first (worker, web server, receiver), each before the next."""
    for name, child in reversed(children):
        if child.poll() is not None:
            continue
        child.terminate()
        try:
            child.wait(timeout=90 if name == "the worker" else 15)
        except subprocess.TimeoutExpired:
            print(f"hookline: {name} did not stop in time; killing it.", file=sys.stderr)
            child.kill()
            child.wait()
