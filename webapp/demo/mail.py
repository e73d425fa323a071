"""The demo's mail catcher: an SMTP server on loopback that keeps each message as a file for the Outbox page.

Nothing leaves the machine; the dashboard's demo-only **Outbox** (``webapp/views/demo_outbox.py``) reads the
folder, so a newcomer sees the warning and disable emails an owner would get.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, folder: Path, on_kept: Callable[[str], None] | None):
        self.folder = folder
        self.on_kept = on_kept

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        path = self.folder / f"{time.time_ns()}.eml"
        partial = path.with_suffix(".part")
        content = envelope.original_content or envelope.content
        partial.write_bytes(content)
        partial.rename(path)  # the Outbox never reads half a message
        if self.on_kept:
            headers = BytesParser(policy=policy.default).parsebytes(content, headersonly=True)
            self.on_kept(str(headers["Subject"] or ""))
        return "250 Message kept for the demo Outbox"


def start_mail_catcher(folder: Path, port: int, on_kept: Callable[[str], None] | None = None) -> Controller:
    """Start the SMTP server on 127.0.0.1:``port`` in a thread; ``.stop()`` it when done.

    ``on_kept`` is called (in the server's thread) with the subject of each message once it is in the Outbox.
    """
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(folder, on_kept), hostname="127.0.0.1", port=port)
    controller.start()
    return controller
