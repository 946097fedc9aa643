"""Where the repository's own folders are: the one place that knows the checkout's layout."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_DIR = REPO_ROOT / "containers"  # image recipes: containers/<name>/Dockerfile
PATCHES_DIR = REPO_ROOT / "patches"  # patch queues: patches/<name>/
MATRICES_DIR = REPO_ROOT / "matrices"
DEFAULT_MATRIX = MATRICES_DIR / "default.yaml"
REPORTS_DIR = REPO_ROOT / "reports"
CACHE_DIR = REPO_ROOT / ".cache"


def cache_dir() -> Path:
    """The cache folder: ``CPR_HARNESS_CACHE`` when set, else the repository's ``.cache``."""
    return Path(os.environ.get("CPR_HARNESS_CACHE") or CACHE_DIR)
