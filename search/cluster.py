"""Joining the Ray cluster of a search or a stage 2, or starting a local Ray instance."""
from __future__ import annotations

import logging
import os
from typing import Optional

import ray

from controller.address import check_reachable


def connect(address: Optional[str], *, namespace: Optional[str] = None, log_to_driver: bool = True) -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS); without one, start a local Ray instance.

    A Ray already initialised in this process is kept. Returns True when Ray is local: this process
    started it (no address, and no ``ray start`` cluster on this machine that ``ray.init`` would join).
    A ``host:port`` that does not accept a connection within seconds is an ``UnreachableAddress``.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        check_reachable(address)  # ray.init would wait minutes for an address that does not answer
        # Ray's own INFO and WARNING lines (a local instance started, token authentication) would
        # come before a command's one-line error; its errors still show.
        options = dict(namespace=namespace, include_dashboard=False, log_to_driver=log_to_driver,
                       logging_level=logging.ERROR)
        if address:
            ray.init(address=address, configure_logging=False, **options)
        else:
            ray.init(**options)
    return started_here()


def started_here() -> bool:
    """Whether this process started its Ray instance (so nothing else will ever add nodes to it)."""
    node = getattr(ray._private.worker, "_global_node", None)  # Node(head=True) only when ray.init started it
    return bool(getattr(node, "head", False))
