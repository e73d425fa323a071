"""Run the HTTP client's tests a second time through the transfer hub: the same contract on a multi handle.

``post_webhook`` on a slot's own thread and inside a hub greenlet must answer alike (failure kinds, time limits,
header and body caps, the address guard). Test modules import ``client_mode`` (autouse, two params); scripts
run in a child process wrap their ``post_webhook`` with ``maybe_via_hub``, told by HOOKLINE_TEST_HUB.
"""

import os

import pytest

from webapp.dispatch import http
from webapp.dispatch.hub import TransferHub

# 8 threads' worth of kept connections, as the 1,000-hosts test's 8 threads have on their own handles.
HUB_CONNECTIONS = 8 * http.CONNECTIONS_PER_THREAD
_hub: TransferHub | None = None


def via_hub(post):
    """Return ``post`` run as a hub greenlet, the calling thread waiting for it as a batch's slot does."""
    global _hub
    if _hub is None:
        _hub = TransferHub(HUB_CONNECTIONS)
    hub = _hub

    def post_on_hub(*args, **kwargs):
        return hub.run(lambda: post(*args, **kwargs))

    return post_on_hub


def maybe_via_hub(post):
    return via_hub(post) if os.environ.get("HOOKLINE_TEST_HUB") == "1" else post


@pytest.fixture(params=["thread", "hub"], autouse=True)
def client_mode(request, monkeypatch):
    if request.param == "hub":
        monkeypatch.setattr(request.module, "post_webhook", via_hub(http.post_webhook))
        monkeypatch.setenv("HOOKLINE_TEST_HUB", "1")
    return request.param
