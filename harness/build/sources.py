"""Fetch QEMU source trees and record where exactly they came from.

:func:`fetch_tree` turns one matrix tree into a :class:`SourceRecord`: the root of an unpacked,
unpatched tree (treat it as read-only), a ``digest`` naming its exact content, and a JSON-able
``provenance`` dict that goes into ``build.json``.

Cache layout under ``cache_dir``::

    downloads/<sha256>/<filename>            tarballs, keyed by their sha256 (re-verified on every use)
    downloads/debian/<pkg>_<version>/        a Debian source set (.dsc, .orig.tar.*, .debian.tar.*);
                                             ``:`` of the epoch spelled ``%3a``
    downloads/rejected/                      files whose digest did not match (kept for inspection)
    git/<sha256(url)[:16]>/                  bare mirror of a git URL
    trees/<sha256[:16]>/                     an unpacked tarball (also the .orig.tar of debian-source)
    trees/git-<commit[:16]>[-nosub]/         a git checkout (with submodules unless ``-nosub``)

Trees appear only by an atomic rename of a finished temporary directory, so an interrupted fetch never
leaves a half tree that a later run would reuse.

Digests (all ``sha256:<64 hex>``):

- ``tarball``: the sha256 of the tarball (as given in the matrix and verified).
- ``debian-source``: the sha256 of the upstream ``.orig.tar.*`` (verified against the ``.dsc``). The
  same tarball fetched as a ``tarball`` tree gives the same digest and shares ``trees/<sha[:16]>``.
- ``git``: sha256 of the text ``"git <commit>\\n"`` followed by ``"submodule <path> <commit>\\n"`` for
  every checked-out submodule (recursive, sorted by path). The plain commit is in
  ``provenance["commit"]``.
- ``local``: sha256 of a manifest, one line per file in sorted relative-path order:
  ``"f <x|-> <sha256 of content> <path>\\n"`` for files (``x`` when executable) and
  ``"l - <sha256 of link target> <path>\\n"`` for symlinks. In a git work tree the files are those
  ``git ls-files --cached --others --exclude-standard`` lists (so ignored build directories do not
  count); otherwise every file, skipping ``.git``, ``__pycache__`` and meson/ninja build directories
  (a directory holding ``build.ninja``, ``meson-private``, ``meson-logs`` or ``config-host.mak``).
- ``prebuilt``: the image id (``sha256:...``) when ``image`` is given, else sha256 of
  ``"prebuilt\\0<image name>\\0<binary>"`` (names only: pass ``image`` to pin the content).

Meson subprojects: after a tree is in place, ``subprojects/*.wrap`` is scanned and every wrap whose
directory is absent (or empty) and which meson would have to download (``wrap-git``/``wrap-hg``/
``wrap-svn``, or ``wrap-file`` with a ``source_url`` whose file is not in ``subprojects/packagecache``)
is listed in ``provenance["subprojects_missing"]``. Fetching never fails because of them: most are
optional (even the Debian ``+ds`` and release tarballs lack dtc, slirp or the Rust crates), and only
the build knows its configure flags. The build calls :func:`check_subprojects` with the names its
profile cannot do without when downloads are disabled (``--disable-download``, the offline default).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.build import debsrc, gitsrc
from harness.build.download import (
    DEFAULT_RETRY,
    RetryPolicy,
    download_verified,
    extract_tarball,
    filename_from_url,
    reject_file,
    sha256_file,
)
from harness.build.gitsrc import run_git as _git
from harness.build.subprojects import missing_subprojects
from harness.errors import InfraError, SourceError

if TYPE_CHECKING:
    from harness.config.schema import Tree
    from harness.engine.containers import Engine, ImageRef

DEFAULT_PREBUILT_BINARY = "/usr/bin/qemu-system-x86_64"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BUILD_DIR_MARKERS = ("build.ninja", "meson-private", "meson-logs", "config-host.mak")
_SKIP_DIRS = (".git", "__pycache__")


@dataclass
class SourceRecord:
    """One fetched tree. ``path`` is ``None`` only for ``prebuilt`` (nothing is fetched)."""

    tree_name: str
    kind: str
    path: Path | None
    digest: str
    provenance: dict[str, Any] = field(default_factory=dict)


def fetch_tree(
    name: str,
    tree: Tree,
    cache_dir: Path,
    *,
    engine: Engine | None = None,
    image: ImageRef | None = None,
    base_dir: Path | None = None,
    progress: Callable[[str], None] = print,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> SourceRecord:
    """Fetch (or find in ``cache_dir``) the source of matrix tree ``name`` and describe it.

    ``engine``/``image`` are needed only by ``debian-source`` on a cache miss (``image`` defaults to
    ``engine.ensure_image(tree.image)``); ``base_dir`` resolves a relative ``local`` path or local git
    URL (default: the current directory); ``retry`` bounds the HTTP retries of ``tarball`` downloads.

    Raises :class:`SourceError` for anything the matrix can fix (bad digest, missing ref, unknown
    Debian version, unreachable URL, missing directory) and :class:`InfraError` for a full disk or a
    missing container engine.
    """
    cache_dir = Path(cache_dir).absolute()
    kind = tree.kind
    if kind == "tarball":
        record = _fetch_tarball(name, tree, cache_dir, progress, retry)
    elif kind == "git":
        record = _fetch_git(name, tree, cache_dir, base_dir, progress)
    elif kind == "debian-source":
        record = _fetch_debian(name, tree, cache_dir, engine, image, progress)
    elif kind == "local":
        record = _fetch_local(name, tree, base_dir)
    elif kind == "prebuilt":
        return _prebuilt(name, tree, image)
    else:
        raise SourceError(f"tree {name}: unknown kind {kind!r}")
    assert record.path is not None
    record.provenance["subprojects_missing"] = missing_subprojects(record.path)
    return record


# ---------------------------------------------------------------------------------------------------
# tarball


def _fetch_tarball(
    name: str, tree: Tree, cache_dir: Path, progress: Callable[[str], None], retry: RetryPolicy
) -> SourceRecord:
    url = tree.url
    if not url:
        raise SourceError(f"tree {name}: kind tarball needs url", hint=f"set trees.{name}.url")
    sha = (tree.sha256 or "").lower().removeprefix("sha256:")
    if not _HEX64.match(sha):
        raise SourceError(
            f"tree {name}: kind tarball needs sha256 (64 hex digits), got {tree.sha256!r}",
            hint=f"set trees.{name}.sha256 to the tarball's `sha256sum`",
        )
    downloads = cache_dir / "downloads"
    filename = filename_from_url(url)
    archive = download_verified(
        url,
        sha,
        downloads / sha,
        filename=filename,
        what=f"tree {name}",
        rejected_dir=downloads / "rejected",
        policy=retry,
        progress=progress,
    )
    target = cache_dir / "trees" / sha[:16]
    if not target.is_dir():
        progress(f"tree {name}: extracting {filename}")
    extract_tarball(archive, target, what=f"tree {name}")
    return SourceRecord(
        tree_name=name,
        kind="tarball",
        path=target,
        digest=f"sha256:{sha}",
        provenance={"url": url, "sha256": sha, "filename": filename, "size": archive.stat().st_size},
    )


# ---------------------------------------------------------------------------------------------------
# debian-source


def _fetch_debian(
    name: str,
    tree: Tree,
    cache_dir: Path,
    engine: Engine | None,
    image: ImageRef | None,
    progress: Callable[[str], None],
) -> SourceRecord:
    package = tree.package or "qemu"
    version = tree.version
    if not version:
        raise SourceError(
            f"tree {name}: kind debian-source needs version",
            hint=f"set trees.{name}.version, e.g. 1:10.2.2+ds-1",
        )
    downloads = cache_dir / "downloads"
    dl_dir = downloads / "debian" / debsrc.cache_dirname(package, version)
    dsc: debsrc.Dsc | None = None
    if dl_dir.is_dir():
        try:
            dsc = debsrc.verify_dir(dl_dir, package, version)
        except SourceError as exc:
            moved = reject_file(dl_dir, downloads / "rejected", "debian")
            progress(f"tree {name}: cached source set failed verification ({exc.message}); moved to {moved}")
    if dsc is None:
        if engine is None:
            raise InfraError(
                f"tree {name}: fetching Debian source {package}={version} needs a container engine",
                hint="start Docker (nox -s provision), or put the source set into " + str(dl_dir),
            )
        if image is None:
            image = engine.ensure_image(tree.image)
        dsc = debsrc.download(name, package, version, dl_dir, engine=engine, image=image, progress=progress)
    orig = dsc.orig
    target = cache_dir / "trees" / orig.sha256[:16]
    if not target.is_dir():
        progress(f"tree {name}: extracting {orig.name} (upstream, unpatched)")
    extract_tarball(dl_dir / orig.name, target, what=f"tree {name}")
    dsc_name = debsrc.dsc_filename(package, version)
    return SourceRecord(
        tree_name=name,
        kind="debian-source",
        path=target,
        digest=f"sha256:{orig.sha256}",
        provenance={
            "package": package,
            "version": version,
            "dsc": dsc_name,
            "dsc_sha256": sha256_file(dl_dir / dsc_name),
            "files": {f.name: f.sha256 for f in dsc.files},
            "orig": orig.name,
            "orig_sha256": orig.sha256,
            "debian_patches_applied": False,
            "mirrors": debsrc.fetch_info(dl_dir).get("mirrors", []),
        },
    )


# ---------------------------------------------------------------------------------------------------
# git


def git_url(tree: Tree, base_dir: Path | None) -> str | None:
    """The URL a ``git`` tree fetches from: a relative local path resolved like a ``local`` tree's."""
    url = tree.url
    if url and gitsrc.is_local_url(url) and not url.startswith(("/", "file://")):
        url = str(((base_dir or Path.cwd()) / url).resolve())
    return url


def local_path(tree: Tree, base_dir: Path | None) -> Path:
    """The folder of a ``local`` tree (relative paths against ``base_dir``, the matrix's folder)."""
    path = Path(tree.path or "").expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve()


def _fetch_git(
    name: str, tree: Tree, cache_dir: Path, base_dir: Path | None, progress: Callable[[str], None]
) -> SourceRecord:
    url = git_url(tree, base_dir)
    co = gitsrc.fetch(name, url, tree.ref, cache_dir, submodules=tree.submodules, progress=progress)
    return SourceRecord(
        tree_name=name,
        kind="git",
        path=co.path,
        digest="sha256:" + hashlib.sha256(co.manifest.encode()).hexdigest(),
        provenance={
            "url": url,
            "ref": tree.ref,
            "commit": co.commit,
            "describe": co.describe,
            "submodules": co.submodules,
            "fetched": co.fetched,
        },
    )


# ---------------------------------------------------------------------------------------------------
# local


def _fetch_local(name: str, tree: Tree, base_dir: Path | None) -> SourceRecord:
    if not tree.path:
        raise SourceError(f"tree {name}: kind local needs path", hint=f"set trees.{name}.path")
    path = local_path(tree, base_dir)
    if not path.is_dir():
        raise SourceError(
            f"tree {name}: local directory {path} does not exist",
            hint=f"check trees.{name}.path (relative paths are resolved against the matrix file's directory)",
        )
    provenance: dict[str, Any] = {"path": str(path), "git": None}
    files: list[str] | None = None
    top = _git(["rev-parse", "--show-toplevel"], cwd=path, check=False)
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == path:
        head = _git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=path, check=False).stdout.strip()
        describe = _git(["--no-optional-locks", "describe", "--always", "--dirty"], cwd=path, check=False)
        provenance["git"] = {
            "head": head or None,
            "describe": describe.stdout.strip() or None,
            "dirty": describe.stdout.strip().endswith("-dirty"),
        }
        listing = _git(
            ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=path, what=f"tree {name}"
        )
        files = sorted({f for f in listing.stdout.split("\0") if f})
    digest, count = content_digest(path, files)
    provenance["files"] = count
    return SourceRecord(tree_name=name, kind="local", path=path, digest=digest, provenance=provenance)


def _walk(root: Path, rel: str = "") -> Iterable[str]:
    base = root / rel if rel else root
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"cannot read directory {base}: {exc.strerror}") from exc
    for e in entries:
        relpath = f"{rel}/{e.name}" if rel else e.name
        if e.is_dir(follow_symlinks=False):
            if e.name in _SKIP_DIRS or any(
                os.path.lexists(os.path.join(e.path, m)) for m in _BUILD_DIR_MARKERS
            ):
                continue
            yield from _walk(root, relpath)
        elif e.name != ".git":  # a submodule's .git file
            yield relpath


def content_digest(root: Path, files: Iterable[str] | None = None) -> tuple[str, int]:
    """``("sha256:<hex>", number of files)`` over ``files`` (relative paths) or a walk of ``root``.

    Listed directories (submodules in ``git ls-files``) are walked; listed paths that no longer exist
    (deleted but still tracked) are skipped. See the module docstring for the manifest format.
    """
    paths: set[str] = set()
    for f in files if files is not None else _walk(root):
        p = root / f
        if p.is_dir() and not p.is_symlink():
            paths.update(f"{f}/{sub}" for sub in _walk(p))
        elif os.path.lexists(p):
            paths.add(f)
    manifest = hashlib.sha256()
    for rel in sorted(paths):
        p = root / rel
        try:
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                line = f"l - {hashlib.sha256(os.readlink(p).encode()).hexdigest()} {rel}\n"
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with p.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
                x = "x" if st.st_mode & 0o111 else "-"
                line = f"f {x} {h.hexdigest()} {rel}\n"
            else:
                continue  # sockets, FIFOs: not source
        except OSError as exc:
            raise SourceError(f"cannot read {p}: {exc.strerror}") from exc
        manifest.update(line.encode())
    return f"sha256:{manifest.hexdigest()}", len(paths)


# ---------------------------------------------------------------------------------------------------
# prebuilt


def _prebuilt(name: str, tree: Tree, image: ImageRef | None) -> SourceRecord:
    binary = tree.binary or DEFAULT_PREBUILT_BINARY
    if image is not None and image.id.startswith("sha256:"):
        digest = image.id
    else:
        digest = "sha256:" + hashlib.sha256(f"prebuilt\0{tree.image}\0{binary}".encode()).hexdigest()
    return SourceRecord(
        tree_name=name,
        kind="prebuilt",
        path=None,
        digest=digest,
        provenance={
            "image": tree.image,
            "image_tag": image.tag if image else None,
            "image_id": image.id if image else None,
            "binary": binary,
        },
    )


def check_subprojects(record: SourceRecord, required: Iterable[str]) -> None:
    """Raise :class:`SourceError` if any of ``required`` (wrap names or directories) is missing.

    For a build whose downloads are disabled (``--disable-download``): meson cannot fetch them.
    """
    wanted = set(required)
    missing = [
        m
        for m in record.provenance.get("subprojects_missing", [])
        if m["name"] in wanted or m["directory"] in wanted
    ]
    if missing:
        listed = ", ".join(f"{m['name']} ({m['url'] or m['type']})" for m in missing)
        raise SourceError(
            f"tree {record.tree_name}: subprojects needed but not in the tree (downloads disabled): {listed}",
            hint="vendor them into subprojects/ (`meson subprojects download NAME` in the tree), build "
            "from a release tarball that ships them, or use a profile with --enable-download",
        )
