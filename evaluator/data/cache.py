"""The on-disk cache of generated datasets: arrays in one ``.npz`` file per parameter set, written atomically."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

Arrays = Dict[str, np.ndarray]


def cached_arrays(name: str, key: str, generate: Callable[[], Arrays],
                  cache_dir: Optional[Path]) -> Tuple[Arrays, Optional[Path]]:
    """The arrays of file ``<name>-<key>.npz`` in ``cache_dir`` when there, else ``generate()``d and written there.

    ``key`` names every generation parameter (a hash). Written to a temporary file in the same
    folder and renamed, so readers (other Ray actors) never see half a file; an unreadable cache
    file is regenerated. Without ``cache_dir`` nothing is read or written.
    """
    if cache_dir is None:
        return generate(), None
    path = cache_dir / f"{name}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {k: stored[k] for k in stored.files}, path
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # a damaged cache is only a cache: make it again
    arrays = generate()
    cache_dir.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache_dir, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return arrays, path
