"""Reading files that something else wrote (a container, a CI shard) without letting it steer the host.

Such files are data, never a path the host follows: a name must be a plain file name inside the folder
it belongs to, the file a regular file (opened with ``O_NOFOLLOW``, checked with ``fstat``), and its size
bounded. Anything else is refused with ``ValueError`` naming what was wrong.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def check_name(name: str) -> str:
    """``name`` when it is a plain file name (no folder part, not ``.``/``..``, no NUL); else ValueError."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"refused file name {name!r} (only plain names inside the folder)")
    return name


def read_untrusted(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of ``folder/name``: a plain name, a regular file (not a symlink), at most ``limit`` bytes.
    Raises ValueError (refused) or OSError (FileNotFoundError when absent)."""
    fd = os.open(Path(folder) / check_name(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"refused {name!r}: not a regular file")
        if st.st_size > limit:
            raise ValueError(f"refused {name!r}: {st.st_size} bytes, more than {limit}")
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
