"""Reading files that something else wrote (a container, a CI shard) without letting it steer the host.

Such files are data, never a path the host follows: a name must be a plain file name inside the folder
it belongs to; the folder is opened once (``O_DIRECTORY | O_NOFOLLOW``) and every file in it relative to
that descriptor (``openat`` with ``O_NOFOLLOW``), so swapping a folder or a file for a symlink while the
host reads cannot redirect it; the file must be a regular file (checked with ``fstat`` on the open
descriptor) and its size is bounded. Anything else is refused with ``ValueError`` naming what was wrong.
Copies are written to a fresh temporary file beside the destination and renamed into place, so a link
planted at the destination is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CHUNK = 1 << 20


def check_name(name: str) -> str:
    """``name`` when it is a plain file name (no folder part, not ``.``/``..``, no NUL); else ValueError."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"refused file name {name!r} (only plain names inside the folder)")
    return name


@contextlib.contextmanager
def open_folder(folder: Path, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor of ``folder`` (not followed when it is a symlink: ``ValueError``)."""
    try:
        fd = os.open(folder, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if _is_link_error(exc):
            raise ValueError(f"refused folder {str(folder)!r}: a symlink or not a folder") from exc
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _is_link_error(exc: OSError) -> bool:
    return exc.errno in (errno.ELOOP, errno.ENOTDIR)


@contextlib.contextmanager
def _open_file(dir_fd: int, name: str, limit: int) -> Iterator[int]:
    try:
        fd = os.open(check_name(name), _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if _is_link_error(exc):
            raise ValueError(f"refused {name!r}: a symlink") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"refused {name!r}: not a regular file")
        if st.st_size > limit:
            raise ValueError(f"refused {name!r}: {st.st_size} bytes, more than {limit}")
        yield fd
    finally:
        os.close(fd)


def read_untrusted(folder: Path, name: str, limit: int) -> bytes:
    """The bytes of ``folder/name``: a plain name, a regular file (not a symlink), at most ``limit`` bytes.
    Raises ValueError (refused) or OSError (FileNotFoundError when absent)."""
    with open_folder(folder) as dir_fd, _open_file(dir_fd, name, limit) as fd:
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, _CHUNK))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def copy_untrusted(folder: Path | int, name: str, dest: Path, limit: int, mode: int | None = None) -> int:
    """Copy ``folder/name`` (as :func:`read_untrusted` accepts it; ``folder`` may be an open folder
    descriptor) to ``dest`` atomically, streaming; return the bytes copied. ``mode`` defaults to the
    source's permission bits without set-id and sticky bits."""
    if isinstance(folder, int):
        return _copy_at(folder, name, dest, limit, mode)
    with open_folder(folder) as dir_fd:
        return _copy_at(dir_fd, name, dest, limit, mode)


def _copy_at(dir_fd: int, name: str, dest: Path, limit: int, mode: int | None) -> int:
    with _open_file(dir_fd, name, limit) as src:
        bits = stat.S_IMODE(os.fstat(src).st_mode) & 0o777 if mode is None else mode
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        copied = 0
        try:
            with os.fdopen(tmp_fd, "wb") as out:
                while copied < limit and (chunk := os.read(src, min(limit - copied, _CHUNK))):
                    out.write(chunk)
                    copied += len(chunk)
                os.fchmod(out.fileno(), bits)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return copied


def copy_tree_untrusted(src: Path, dest: Path, limit: int) -> list[str]:
    """Copy the folders and regular files under ``src`` into ``dest`` without following any link.

    Symlinks, devices, FIFOs, sockets and files over ``limit`` bytes are left out; the returned list
    names each (relative path and why), so the caller can say what it refused."""
    refused: list[str] = []
    with open_folder(src) as fd:
        _copy_level(fd, Path(dest), "", limit, refused)
    return refused


def _copy_level(dir_fd: int, dest: Path, rel: str, limit: int, refused: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        where = f"{rel}{name}"
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                with open_folder(Path(name), dir_fd=dir_fd) as sub:
                    _copy_level(sub, dest / name, f"{where}/", limit, refused)
            elif stat.S_ISREG(st.st_mode):
                _copy_at(dir_fd, name, dest / name, limit, None)
            else:
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                refused.append(f"{where}: {kind}")
        except ValueError as exc:
            refused.append(f"{where}: {exc}")
