"""Git trees: a bare mirror per URL, a checkout per commit, submodules initialised.

Used by :mod:`harness.sources` for ``kind: git`` trees (and :func:`run_git` for ``local`` ones).

- The mirror ``git/<sha256(url)[:16]>`` fetches only the requested ref (into ``refs/cpr/<hash>``; tags
  pointing into it follow). A full commit id already in the mirror needs no network; a branch or tag
  is always fetched, and when the URL is unreachable a previously fetched value is used with a
  warning (``fetched: false`` in the provenance).
- The checkout is a local clone of the mirror (objects hard-linked) whose ``origin`` is set back to
  the real URL, so relative submodule URLs resolve as upstream intends; it appears at
  ``trees/git-<commit[:16]>[-nosub]`` by an atomic rename once the submodules are in.
- git runs with argv lists only, ``GIT_TERMINAL_PROMPT=0`` and ssh in batch mode: a URL needing
  credentials fails instead of prompting. ``protocol.file.allow=always`` (needed for submodules on
  local paths since git 2.38.1) is set only when the tree's own URL is a local path. A URL or ref
  starting with ``-`` is refused (git would read it as an option).
- One run at a time works in a mirror: creating and fetching it hold ``git/<hash>.lock`` (in the cache).
  When git itself finds a lock taken (``index.lock``/``*.lock: File exists``, ``cannot lock ref``: a
  concurrent git outside the harness, or one that was killed), that is an :class:`InfraError` naming
  the lock, never a fetch failure of the tree.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.build.download import disk_full_is_infra
from harness.engine.locks import LockBusy, file_lock
from harness.errors import InfraError, SourceError

_HEX_FULL = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_HEX_ABBREV = re.compile(r"^[0-9a-f]{7,64}$")
_GIT_LOCKED = re.compile(r"Unable to create '([^']+\.lock)': File exists|cannot lock ref '([^']+)'")
MIRROR_LOCK_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class GitCheckout:
    path: Path
    commit: str
    submodules: dict[str, str]  # path -> commit, recursive, initialised ones only
    describe: str
    fetched: bool  # False when the ref came from the mirror without asking the URL

    @property
    def manifest(self) -> str:
        """The text whose sha256 is the tree's digest."""
        subs = "".join(f"submodule {p} {c}\n" for p, c in sorted(self.submodules.items()))
        return f"git {self.commit}\n{subs}"


def is_local_url(url: str) -> bool:
    """A path or ``file://`` URL (not ``host:path``, not ``scheme://``)."""
    return url.startswith(("/", "./", "../", "file://")) or "://" not in url and ":" not in url.split("/")[0]


def run_git(
    args: list[str], *, cwd: Path | None = None, allow_file: bool = False, check: bool = True, what: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "LC_ALL": "C",
    }
    argv = ["git", *(["-c", "protocol.file.allow=always"] if allow_file else []), *args]
    try:
        res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise InfraError("git is not installed on this host", hint="install git") from exc
    if "No space left on device" in res.stderr:
        raise InfraError(
            f"{what}: disk full while running {' '.join(argv)} in {cwd}",
            hint=f"free space on the filesystem holding {cwd}",
        )
    if res.returncode != 0 and (locked := _GIT_LOCKED.search(res.stderr)):
        raise InfraError(
            f"{what}: git found a lock taken in {cwd}: {locked.group(1) or locked.group(2)} "
            f"({last_line(res.stderr)})",
            hint="another git process works there; if none does, a killed one left the .lock file: remove it",
        )
    if check and res.returncode != 0:
        raise SourceError(f"{what}: `{' '.join(argv)}` failed: {last_line(res.stderr)}")
    return res


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    return (fatal or lines or ["(no output)"])[-1]


def _rev_parse(repo: Path, rev: str) -> str | None:
    res = run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def mirror_path(cache_dir: Path, url: str) -> Path:
    """The bare mirror of ``url`` in the cache (``git/<sha256(url)[:16]>``)."""
    return cache_dir / "git" / hashlib.sha256(url.encode()).hexdigest()[:16]


def resolve(
    name: str,
    url: str | None,
    ref: str | None,
    cache_dir: Path,
    *,
    progress: Callable[[str], None] = print,
) -> tuple[Path, str, bool]:
    """``(mirror, commit, fetched)``: ``ref`` of ``url`` resolved in the cache's mirror of ``url`` (fetched
    into it when needed; no checkout). Raises :class:`SourceError` for a missing ref or URL."""
    what = f"tree {name}"
    if not url or not ref:
        raise SourceError(
            f"{what}: kind git needs url and ref", hint=f"set trees.{name}.url and trees.{name}.ref"
        )
    for key, value in (("url", url), ("ref", ref)):
        if value.startswith("-"):
            raise SourceError(
                f"{what}: {key} {value!r} starts with '-' (git would read it as an option)",
                hint=f"fix trees.{name}.{key}",
            )
    mirror = mirror_path(cache_dir, url)
    try:
        with file_lock(mirror.with_suffix(".lock"), timeout=MIRROR_LOCK_TIMEOUT_S):
            _ensure_mirror(what, mirror, url)
            commit, fetched = _resolve_ref(what, mirror, url, ref, is_local_url(url), progress)
    except LockBusy as exc:
        raise InfraError(
            f"{what}: the git mirror {mirror} stayed locked for {MIRROR_LOCK_TIMEOUT_S:.0f} s ({exc})",
            hint="another run is fetching into it; wait for it, or stop it",
        ) from exc
    return mirror, commit, fetched


def fetch(
    name: str,
    url: str | None,
    ref: str | None,
    cache_dir: Path,
    *,
    submodules: bool = True,
    progress: Callable[[str], None] = print,
) -> GitCheckout:
    """Resolve ``ref`` of ``url`` and return the checkout of that commit (made once, then reused).

    A missing ref or an unreachable URL raises :class:`SourceError` naming both.
    """
    what = f"tree {name}"
    mirror, commit, fetched = resolve(name, url, ref, cache_dir, progress=progress)
    assert url is not None
    allow_file = is_local_url(url)

    suffix = "" if submodules else "-nosub"
    trees = cache_dir / "trees"
    target = trees / f"git-{commit[:16]}{suffix}"
    if not target.is_dir():
        progress(f"{what}: checking out {commit[:12]} ({ref})")
        with disk_full_is_infra("checking out a git tree", trees):
            trees.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=trees))
            try:
                work = tmp / "src"
                run_git(["clone", "--quiet", "--no-checkout", str(mirror), str(work)], what=what)
                run_git(["remote", "set-url", "origin", url], cwd=work, what=what)  # relative submodule URLs
                run_git(["checkout", "--quiet", "--detach", commit], cwd=work, what=what)
                if submodules and (work / ".gitmodules").is_file():
                    progress(f"{what}: initialising submodules")
                    res = run_git(
                        ["submodule", "update", "--init", "--recursive"],
                        cwd=work,
                        allow_file=allow_file,
                        check=False,
                        what=what,
                    )
                    if res.returncode != 0:
                        raise SourceError(
                            f"{what}: submodules of {url} at {commit[:12]} failed: {last_line(res.stderr)}",
                            hint=f"check the submodule URLs, or set trees.{name}.submodules: false",
                        )
                try:
                    os.rename(work, target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    subs: dict[str, str] = {}
    if (target / ".gitmodules").is_file():
        res = run_git(["submodule", "status", "--recursive"], cwd=target, what=what)
        for ln in res.stdout.splitlines():
            if ln and ln[0] != "-":  # "-": not initialised
                sha, path = ln[1:].split()[:2]
                subs[path] = sha
    describe = run_git(["describe", "--always", "--tags", commit], cwd=target, check=False).stdout.strip()
    return GitCheckout(
        path=target, commit=commit, submodules=subs, describe=describe or commit[:12], fetched=fetched
    )


def _ensure_mirror(what: str, mirror: Path, url: str) -> None:
    with disk_full_is_infra("creating a git mirror", mirror.parent):
        if (mirror / "HEAD").is_file():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=mirror.parent))
        run_git(["init", "--quiet", "--bare", str(tmp)], what=what)
        run_git(["remote", "add", "origin", url], cwd=tmp, what=what)
        try:
            os.rename(tmp, mirror)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (mirror / "HEAD").is_file():
                raise


def _resolve_ref(
    what: str, mirror: Path, url: str, ref: str, allow_file: bool, progress: Callable[[str], None]
) -> tuple[str, bool]:
    """Resolve ``ref`` to a commit in ``mirror``, fetching from ``url`` when needed.

    Returns (commit, fetched). A full commit id already in the mirror needs no network. A branch or
    tag is always fetched (it may have moved); when the URL is unreachable but the ref was fetched
    before, the cached value is used with a warning (``fetched`` False).
    """
    if _HEX_FULL.match(ref):
        commit = _rev_parse(mirror, ref)
        if commit:
            return commit, False
    local_ref = f"refs/cpr/{hashlib.sha256(ref.encode()).hexdigest()[:16]}"
    progress(f"{what}: fetching {ref} from {url}")
    res = run_git(
        ["fetch", "--quiet", "origin", f"+{ref}:{local_ref}"],
        cwd=mirror,
        allow_file=allow_file,
        check=False,
        what=what,
    )
    if res.returncode == 0:
        commit = _rev_parse(mirror, local_ref)
        if commit:
            return commit, True
        raise SourceError(f"{what}: ref {ref!r} of {url} does not name a commit")
    # Is the repository reachable at all? Then the ref is what is missing.
    probe = run_git(["ls-remote", "origin"], cwd=mirror, allow_file=allow_file, check=False, what=what)
    if probe.returncode != 0:
        cached = _rev_parse(mirror, local_ref)
        if cached:
            progress(
                f"{what}: WARNING: cannot reach {url} ({last_line(probe.stderr)}); "
                f"using the cached {ref} = {cached[:12]}"
            )
            return cached, False
        raise SourceError(
            f"{what}: cannot fetch {url}: {last_line(probe.stderr)}",
            hint="check the URL and the network (credentials are never prompted for)",
        )
    if _HEX_ABBREV.match(ref):  # an abbreviated (or unadvertised) commit id: fetch everything and look
        run_git(
            ["fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            cwd=mirror,
            allow_file=allow_file,
            what=what,
        )
        commit = _rev_parse(mirror, ref)
        if commit:
            return commit, True
    raise SourceError(
        f"{what}: ref {ref!r} not found in {url} ({last_line(res.stderr)})",
        hint="use an existing branch, tag or full commit id",
    )
