"""The demo's mail catcher: an SMTP server on loopback that keeps each message as a file for the Outbox page.

Nothing leaves the machine; the dashboard's demo-only **Outbox** (``webapp/views/demo_outbox.py``) reads the
folder, so a newcomer sees the warning and disable emails an owner would get.
"""

from __future__ import annotations

import time
from pathlib import Path

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        path = self.folder / f"{time.time_ns()}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(path)  # the Outbox never reads half a message
        return "250 Message kept for the demo Outbox"


def start_mail_catcher(folder: Path, port: int) -> Controller:
    """Start the SMTP server on 127.0.0.1:``port`` in a thread; ``.stop()`` it when done."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller
