"""One question asked before any download or tunnel: can this machine reach a host at all?"""

from __future__ import annotations

import socket


def reachable(host: str, timeout: float = 5.0, port: int = 443) -> bool:
    """A TCP connection to host:port within `timeout`: catches the offline case at once, where a
    client library would try every mirror with long timeouts of its own."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
