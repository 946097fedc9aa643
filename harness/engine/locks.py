"""Advisory file locks: two runs that share one cache wait for each other instead of colliding.

Lock files live in the cache (``<cache>/locks/``, ``builds/<key>/.lock``, ...), never under predictable
names in a world-writable folder such as ``/tmp``, where another user could plant them; they are opened
without following a symlink.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class LockBusy(Exception):
    """``file_lock(..., timeout=...)`` did not get the lock in time: someone else holds it."""


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None = None) -> Iterator[None]:
    """An exclusive advisory lock held for the ``with`` block (two runs sharing one cache).

    ``timeout``: seconds to wait at most, then :class:`LockBusy` (default: wait as long as it takes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() >= deadline:
                        raise LockBusy(f"{path} is held by another process") from exc
                    time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
