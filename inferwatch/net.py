"""Local TCP ports: finding a free one, and telling whether a given one is free."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on at `host` now (the OS's pick; free until someone binds it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """Could a server listen on it? SO_REUSEADDR as servers set it: connections of a server that
    just stopped linger in TIME_WAIT and must not make its port look taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
