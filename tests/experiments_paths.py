"""Where the user scripts and configs are, for tests that run them."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
CONFIGS = EXPERIMENTS / "configs"
