"""DatasetError, the one exception of the data package, and where data lives on disk without ``data_dir``."""
from __future__ import annotations

import os
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that cannot be loaded as asked: unknown name or option, missing or corrupt files."""


def default_cache_dir() -> Path:
    """Where generated data and downloads go without ``data_dir``: $SASE_NAS_CACHE or ~/.cache/sase-nas."""
    return Path(os.environ.get("SASE_NAS_CACHE", Path.home() / ".cache" / "sase-nas"))
