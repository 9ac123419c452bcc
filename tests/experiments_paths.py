"""The user scripts and configs for tests that run them, and the log columns that differ between two runs."""
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
CONFIGS = ROOT / "search" / "configs"
SEARCH_SCRIPT = EXPERIMENTS / "run_rl_search.py"
VOLATILE = ["timestamp", "wall_time_s"]  # the only columns allowed to differ between runs


def load_script(name: str) -> ModuleType:
    """experiments/<name>.py imported as a module (not run), to call its ``main`` in-process."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
