"""What every benchmark script shares: Ray's environment, where results go, writing them, and timing.

Import it before Ray: it sets Ray's environment variables (loopback-only nodes, no usage stats)
and puts the checkout on ``sys.path``, so a script runs from a checkout, installed or not.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, NoReturn, Optional

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from searchspace import strict_json  # noqa: E402  (strict JSON: NaN written as null)

RESULTS = Path(__file__).resolve().parent / "results"
REPOSITORY = RESULTS.parents[1]


def repository_path(path: Path) -> str:
    """``path`` as a committed result names it: relative to the repository when inside it (a result
    names no machine's paths), else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(REPOSITORY)) if path.is_relative_to(REPOSITORY) else str(path)


def fail(message: str) -> NoReturn:
    """Bad input: one ``error:`` line on stderr and exit code 2, as every command of the project does."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def write_result(path: Path, document: Dict[str, Any], indent: int = 2) -> None:
    """``document`` as JSON at ``path``, written to a temporary file and renamed (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(strict_json.dumps(document, indent=indent, default=float) + "\n")  # NaN -> null
    os.chmod(temporary, 0o644)  # mkstemp makes it private; a results file is for everyone to read
    os.replace(temporary, path)


def show_result(document: Dict[str, Any]) -> None:
    """Print a result without its machine description."""
    print(strict_json.dumps({k: v for k, v in document.items() if k != "machine"}, indent=2, default=float))


def timed(run: Callable[[], Any], warm_up: Optional[Callable[[], Any]] = None) -> float:
    """Seconds one call of ``run`` takes, after one untimed call of ``warm_up``."""
    if warm_up is not None:
        warm_up()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
