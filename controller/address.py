"""Whether a Ray address answers: a TCP connect with a short timeout, since ``ray.init`` waits minutes."""
from __future__ import annotations

import socket
from typing import Optional

ADDRESS_TIMEOUT_S = 5.0  # a Ray address that does not accept a TCP connection within this is unreachable


class UnreachableAddress(ValueError):
    """A Ray address that is malformed or does not accept a connection; the message names it."""


def check_reachable(address: Optional[str], timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) address that does not accept a connection.
    None, ``auto`` and ``local`` are left to Ray, which answers them at once."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not port.isdigit() or not host:
        raise UnreachableAddress(f"ray address: expected host:port, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UnreachableAddress(f"ray address: no Ray cluster reachable at {address} ({reason})") from None
