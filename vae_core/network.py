"""One question asked before any download or tunnel: can this machine reach a host at all?"""

from __future__ import annotations

import socket


def reachable(host: str, timeout: float = 5.0) -> bool:
    """A TCP connection to host:443 within `timeout`: catches the offline case at once, where a
    client library would try every mirror with long timeouts of its own."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
