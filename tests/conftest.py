"""Shared fixtures: the real Docker engine (skip cleanly when none answers) and the harness CLI."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import private_engine  # noqa: F401 (fixture of the fault tests)
from matrixkit import repo  # noqa: F401 (fixture of the matrix tests)
from sourcekit import qemu_10_2_tree, server, upstream  # noqa: F401 (fixtures of the source tests)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"


def _engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception:
        return False
    return True


ENGINE = _engine_answers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # a test on the real QEMU tree needs the engine that fetches it
        if "qemu_10_2_tree" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
    if ENGINE or os.environ.get("CI"):
        return  # in CI a missing engine must fail loudly, not skip
    skip = pytest.mark.skip(reason="no Docker engine answers (nox -s provision)")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


def _repository_inputs() -> dict[str, tuple[int, int]]:
    """matrices/ and patches/ and everything under them, with size and mtime (a folder's mtime changes
    when an entry is made or removed in it, so a file written and deleted again shows too)."""
    found = {}
    for folder in ("matrices", "patches"):
        for path in [REPO / folder, *sorted((REPO / folder).rglob("*"))]:
            st = path.lstat()
            found[str(path.relative_to(REPO))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def repository_inputs_untouched() -> Iterator[None]:
    """Tests write nothing into the repository's matrices/ or patches/ (they use temporary folders)."""
    before = _repository_inputs()
    yield
    after = _repository_inputs()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into the repository: {changed}"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The harness cache shared by integration tests (the repo's .cache unless CPR_HARNESS_CACHE)."""
    path = Path(os.environ.get("CPR_HARNESS_CACHE", REPO / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_args(cache: Path, reports: Path, run_id: str) -> list[str]:
    """``--cache C --reports R --run-id I``: where a harness command run by a test keeps its files."""
    return ["--cache", str(cache), "--reports", str(reports), "--run-id", run_id]


def run_harness(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m harness ARGS`` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@functools.cache
def image_tag(name: str) -> str:
    """The tag of the harness image ``containers/<name>``, built through the harness when missing.

    ``CPR_TEST_IMAGE_<NAME>`` (upper case, dashes as underscores) overrides it with any local tag."""
    override = os.environ.get("CPR_TEST_IMAGE_" + name.upper().replace("-", "_"))
    if override:
        return override
    from harness.engine.containers import Engine

    return Engine.connect(progress=lambda line: None).ensure_image(name).tag
