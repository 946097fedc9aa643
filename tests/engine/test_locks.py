"""Locks live in the cache, are never followed through a planted symlink, and can time out."""

from __future__ import annotations

import errno
import multiprocessing
import tempfile
from pathlib import Path

import pytest

from harness.engine.containers import Engine
from harness.engine.locks import LockBusy, file_lock


def test_a_symlink_planted_at_the_lock_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (tmp_path / "x.lock").symlink_to(victim)
    with pytest.raises(OSError) as exc, file_lock(tmp_path / "x.lock"):
        pass
    assert exc.value.errno == errno.ELOOP and not victim.exists()


def _hold(
    path: str, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event
) -> None:
    with file_lock(Path(path)):
        ready.set()
        done.wait(30)


def test_a_held_lock_times_out(tmp_path: Path) -> None:
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path / "m.lock"), ready, done))
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(LockBusy, match="held by another process"),
            file_lock(tmp_path / "m.lock", timeout=0.5),
        ):
            pass
    finally:
        done.set()
        holder.join(10)
    with file_lock(tmp_path / "m.lock", timeout=0.5):
        pass


@pytest.mark.docker
def test_image_locks_are_in_the_cache_not_tmp(tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).glob("cpr-harness-*.lock"))
    engine = Engine.connect(progress=lambda line: None, lock_dir=tmp_path / "locks")
    engine.ensure_image("debian-trixie")
    assert {p.name for p in (tmp_path / "locks").iterdir()} >= {
        "image-debian-trixie.lock",
        "root-trixie.lock",
    }
    assert set(Path(tempfile.gettempdir()).glob("cpr-harness-*.lock")) == before
