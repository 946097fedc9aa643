"""Verified HTTP downloads and safe tarball extraction into a content-addressed cache.

Used by :mod:`harness.sources`. Everything here works on the host; nothing knows about QEMU.

- :func:`download_verified` streams a URL (``http(s)://``, or ``file:///absolute/path``) into
  ``<dest_dir>/<filename>.<random>.part``, retries connection errors and 5xx answers with exponential
  backoff, checks the sha256 and only then renames the file into place. A file whose digest differs is
  moved to a ``rejected/`` directory, never used.
- :func:`extract_tarball` checks every member before anything is written and refuses the archive
  outright for: an absolute name, a ``..`` component, a device or FIFO, a member whose path passes
  through a symlink of the archive (or that replaces one), a symlink whose target -- followed through
  the archive's other symlinks, chains included -- leaves the tree, and a hardlink to anything but an
  earlier regular file of the archive. These checks do not rely on the ``data`` filter of the running
  Python (3.11 to 3.13 before their mid-2025 releases follow such chains: CVE-2025-4138, -4330,
  -4517); the filter is applied on top. It extracts into a temporary directory next to the target and
  renames it into place, so an interrupted extraction never leaves a tree that a later run would reuse.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests

from harness.errors import InfraError, SourceError

Progress = Callable[[str], None]

_CHUNK = 1 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard :func:`download_verified` tries: ``attempts`` in all, sleeping ``backoff_s * 2**n``."""

    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 30.0  # connect and per-read timeout
    progress_interval_s: float = 0.5


DEFAULT_RETRY = RetryPolicy()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def filename_from_url(url: str) -> str:
    """The last path component of ``url`` (percent-decoded), or ``download`` when there is none."""
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name if name not in ("", ".", "..") else "download"


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in _DISK_FULL


@contextlib.contextmanager
def disk_full_is_infra(what: str, directory: Path) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT raised in the block into an :class:`InfraError` naming ``directory``."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise InfraError(
                f"disk full while {what} into {directory}: {exc.strerror}",
                hint=f"free space on the filesystem holding {directory}, or point the cache elsewhere",
            ) from exc
        raise


def reject_file(path: Path, rejected_dir: Path, note: str) -> Path:
    """Move ``path`` aside into ``rejected_dir`` (never deleted silently, never used again)."""
    rejected_dir.mkdir(parents=True, exist_ok=True)
    target = rejected_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{note}-{path.name}"
    n = 0
    while target.exists():
        n += 1
        target = target.with_name(f"{target.name}.{n}")
    os.replace(path, target)
    return target


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class _Transient(Exception):
    """A failure worth another attempt (connection error, timeout, 5xx, truncated body)."""


def _copy_local(url: str, part: Path, progress: Progress, label: str) -> None:
    """``file:///path``: copy the local file (no retries: a missing file is the matrix's problem)."""
    parsed = urllib.parse.urlsplit(url)
    path = Path(urllib.parse.unquote(parsed.path))
    if parsed.netloc not in ("", "localhost") or not path.is_absolute():
        raise SourceError(f"cannot read {url}: use file:///absolute/path", hint="fix the URL in the matrix")
    try:
        with path.open("rb") as src, part.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        raise SourceError(
            f"cannot read {url}: {exc.strerror or exc}", hint="check the path in the matrix"
        ) from exc
    progress(f"{label}: {_human(part.stat().st_size)} copied")


def _fetch_once(url: str, part: Path, label: str, policy: RetryPolicy, progress: Progress) -> None:
    if url.startswith("file:"):
        _copy_local(url, part, progress, label)
        return
    try:
        resp = requests.get(url, stream=True, timeout=policy.timeout_s)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:  # invalid URL, unsupported scheme, ...
        raise SourceError(f"cannot download {url}: {exc}") from exc
    with resp:
        if resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code} {resp.reason}")
        if resp.status_code >= 400:
            raise SourceError(
                f"cannot download {url}: HTTP {resp.status_code} {resp.reason}",
                hint="check the URL in the matrix",
            )
        total = int(resp.headers.get("Content-Length") or 0) or None
        done = 0
        last = time.monotonic()
        try:
            with part.open("wb") as f:
                for chunk in resp.iter_content(_CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if now - last >= policy.progress_interval_s:
                        last = now
                        of = f" / {_human(total)} ({100 * done // total}%)" if total else ""
                        progress(f"{label}: {_human(done)}{of}")
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(f"{type(exc).__name__} after {done} bytes: {exc}") from exc
        if total is not None and done != total:
            raise _Transient(f"truncated body: got {done} of {total} bytes")
        progress(f"{label}: {_human(done)} done")


def download_verified(
    url: str,
    sha256: str,
    dest_dir: Path,
    *,
    filename: str | None = None,
    what: str = "",
    rejected_dir: Path | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    progress: Progress = print,
) -> Path:
    """Return ``dest_dir/filename`` holding the content of ``url`` whose sha256 is ``sha256``.

    A file already there is re-verified and reused (no network); a cached file that no longer matches
    is moved to ``rejected_dir`` and downloaded again. A freshly downloaded file that does not match is
    moved to ``rejected_dir`` and a :class:`SourceError` names ``what``, the URL and both digests.
    Connection errors, timeouts and 5xx answers are retried ``policy.attempts`` times in all.
    """
    expected = sha256.lower()
    filename = filename or filename_from_url(url)
    rejected_dir = rejected_dir or dest_dir.parent / "rejected"
    final = dest_dir / filename
    label = f"{what + ': ' if what else ''}downloading {filename}"
    with disk_full_is_infra(f"downloading {url}", dest_dir):
        if final.is_file():
            actual = sha256_file(final)
            if actual == expected:
                return final
            moved = reject_file(final, rejected_dir, f"cached-{actual[:16]}")
            progress(f"{what}: cached {filename} has sha256 {actual}, expected {expected}; moved to {moved}")
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{filename}.", suffix=".part", dir=dest_dir)
        os.close(fd)
        part = Path(tmp)
        try:
            last_error = ""
            for attempt in range(policy.attempts):
                if attempt:
                    delay = policy.backoff_s * 2 ** (attempt - 1)
                    progress(f"{label}: attempt {attempt} failed ({last_error}); retrying in {delay:g} s")
                    time.sleep(delay)
                try:
                    _fetch_once(url, part, label, policy, progress)
                    break
                except _Transient as exc:
                    last_error = str(exc)
            else:
                raise SourceError(
                    f"{what + ': ' if what else ''}cannot download {url} after {policy.attempts} attempts: "
                    f"{last_error}",
                    hint="check the URL and the network, or put the file into the cache by hand",
                )
            actual = sha256_file(part)
            if actual != expected:
                moved = reject_file(part, rejected_dir, actual[:16])
                raise SourceError(
                    f"{what + ': ' if what else ''}sha256 mismatch for {url}: expected {expected}, "
                    f"got {actual} (file set aside as {moved})",
                    hint="if the new file is the one you want, update sha256 in the matrix; "
                    "otherwise the server or the URL changed",
                )
            os.replace(part, final)
            return final
        finally:
            part.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# Extraction


def _refuse(archive: Path, name: str, problem: str) -> SourceError:
    return SourceError(
        f"refusing to extract {archive}: member {name!r} {problem}",
        hint="the archive is malformed or malicious; use another source",
    )


def _parts(name: str) -> tuple[str, ...]:
    """The components of a member name, without ``.`` and empty ones (``a//./b`` -> ``("a", "b")``)."""
    return tuple(p for p in name.split("/") if p not in ("", "."))


class _TreeModel:
    """What the archive's members make of the tree, to check links before anything is written."""

    MAX_HOPS = 40  # as the kernel's own limit on symlinks followed in one lookup

    def __init__(self) -> None:
        self.links: dict[tuple[str, ...], str] = {}  # symlink member -> its target
        self.files: set[tuple[str, ...]] = set()  # regular file members
        self.seen: set[tuple[str, ...]] = set()  # every member and every folder above one

    def resolve(self, parts: tuple[str, ...]) -> tuple[str, ...] | None:
        """``parts`` with every symlink of the archive followed, as the kernel would; None when the path
        leaves the tree (or loops)."""
        todo, hops = list(reversed(parts)), 0
        out: list[str] = []
        while todo:
            part = todo.pop()
            if part == "..":
                if not out:
                    return None
                out.pop()
                continue
            out.append(part)
            target = self.links.get(tuple(out))
            if target is None:
                continue
            hops += 1
            if target.startswith("/") or hops > self.MAX_HOPS:
                return None
            out.pop()
            todo.extend(reversed(_parts(target)))
        return tuple(out)

    def through_link(self, parts: tuple[str, ...]) -> bool:
        return any(parts[:n] in self.links for n in range(1, len(parts)))


def _check_member(member: tarfile.TarInfo, archive: Path, model: _TreeModel) -> None:
    name = member.name
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        raise _refuse(archive, name, "has an absolute path")
    parts = _parts(name)
    if ".." in parts:
        raise _refuse(archive, name, "has a '..' component")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _refuse(archive, name, "is a device or FIFO")
    if model.through_link(parts):
        raise _refuse(archive, name, "lies behind a symlink of the archive")
    if parts in model.links or (member.issym() and parts in model.seen):
        raise _refuse(archive, name, "replaces a symlink (or is a symlink replacing a member or folder)")
    if member.issym():
        target = member.linkname
        if target.startswith("/") or not target:
            raise _refuse(archive, name, f"is a link pointing outside the tree ({target})")
        model.links[parts] = target
    elif member.islnk():
        target_parts = _parts(member.linkname)
        if member.linkname.startswith("/") or ".." in target_parts or target_parts not in model.files:
            raise _refuse(
                archive, name, f"is a hardlink to {member.linkname!r}, not to an earlier file of the archive"
            )
        model.files.add(parts)
    elif member.isreg():
        model.files.add(parts)
    model.seen.update(parts[:n] for n in range(1, len(parts) + 1))


def check_members(members: list[tarfile.TarInfo], archive: Path, strip_single_top: bool = True) -> None:
    """Refuse the archive (SourceError) when a member could write or point outside the tree: the
    extraction folder, or its single top folder when that becomes the tree (``strip_single_top``)."""
    model = _TreeModel()
    for m in members:
        _check_member(m, archive, model)
    tops = {parts[0] for parts in model.seen}
    root: tuple[str, ...] = ()
    if strip_single_top and len(tops) == 1 and (top := (next(iter(tops)),)) not in model.links:
        root = top if any(len(parts) > 1 for parts in model.seen) else ()
    for parts, target in model.links.items():  # every link, followed through all the others
        resolved = model.resolve((*parts[:-1], *_parts(target)))
        if resolved is None or resolved[: len(root)] != root:
            raise _refuse(archive, "/".join(parts), f"is a link pointing outside the tree ({target})")


def extract_tarball(archive: Path, target: Path, *, what: str = "", strip_single_top: bool = True) -> Path:
    """Unpack ``archive`` so that ``target`` is the tree root; return ``target``.

    If ``target`` exists it is taken as complete (it only ever appears by an atomic rename) and reused.
    With ``strip_single_top`` the single top-level directory of the archive (``qemu-10.2.0/``) is
    removed. Unsafe members raise :class:`SourceError` before anything is written; ENOSPC raises
    :class:`InfraError`.
    """
    if target.is_dir():
        return target
    prefix = f"{what}: " if what else ""
    parent = target.parent
    with disk_full_is_infra(f"extracting {archive.name}", parent):
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
        try:
            try:
                with tarfile.open(archive) as tf:
                    members = tf.getmembers()
                    check_members(members, archive, strip_single_top)
                    tf.extractall(tmp, members=members, filter="data")
            except (tarfile.TarError, EOFError, ValueError) as exc:
                raise SourceError(
                    f"{prefix}cannot extract {archive}: {type(exc).__name__}: {exc}",
                    hint="the archive is damaged or unsafe; delete it from the cache or use another source",
                ) from exc
            entries = list(tmp.iterdir())
            root = tmp
            if strip_single_top and len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
                root = entries[0]
            try:
                os.rename(root, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and target.is_dir():
                    return target  # another process finished the same tree first
                raise
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
