"""The folders a QEMU tree borrows from other repositories: git submodules and meson subprojects.

Release tarballs ship them; ``git archive`` exports and a code hosting site's download links do not (they
carry ``.gitmodules`` and ``subprojects/*.wrap`` but leave the folders empty or absent). Two views:

- :func:`missing_subprojects`: wraps whose folder is absent and that meson would have to download
  (informational: most are optional, e.g. dtc, slirp or the Rust crates, and only configure knows).
- :func:`subtrees` / :func:`missing_required`: every declared folder (from ``.gitmodules`` and the wraps),
  and those a build cannot do without that are absent or empty. Required are the folders QEMU's own
  configure insists on: ``keycodemapdb`` (ui keymaps; ``ERROR: missing GIT submodules`` in 6.x-8.0 when
  absent) and the ``berkeley-softfloat-3`` / ``berkeley-testfloat-3`` sources (TCG builds), whether
  they live at ``ui/keycodemapdb`` and ``tests/fp/`` (git-submodule era, up to 8.0) or under
  ``subprojects/`` (meson wraps, 8.1 on). Optional folders (roms, dtc, slirp, meson, libvfio-user, Rust
  crates) are left to configure and its triage.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

REQUIRED = frozenset({"keycodemapdb", "berkeley-softfloat-3", "berkeley-testfloat-3"})
_SECTION = re.compile(r'^\s*\[submodule\s+"([^"]+)"\]\s*$')
_KEY = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Subtree:
    """One borrowed folder of a tree. ``name`` is the folder's last component (stable across eras)."""

    name: str
    path: str  # relative to the tree root, e.g. "ui/keycodemapdb" or "subprojects/keycodemapdb"
    declared_by: str  # ".gitmodules" or "subprojects/<name>.wrap"
    url: str = ""
    revision: str | None = None  # a wrap's pinned ``revision``; None for submodules of an export

    @property
    def required(self) -> bool:
        return self.name in REQUIRED

    def describe(self) -> str:
        pin = f", revision {self.revision[:12]}" if self.revision else ""
        return f"{self.path} ({self.declared_by}{pin})"

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "path": self.path,
            "declared_by": self.declared_by,
            "url": self.url,
            "revision": self.revision,
        }


def present(root: Path, rel: str) -> bool:
    """The folder exists, is a real directory (not a link out of the tree) and holds something."""
    folder = root / rel
    return folder.is_dir() and not folder.is_symlink() and any(folder.iterdir())


def _gitmodules(root: Path) -> list[Subtree]:
    path = root / ".gitmodules"
    if not path.is_file():
        return []
    out: list[Subtree] = []
    current: dict[str, str] = {}
    for line in [*path.read_text(encoding="utf-8", errors="replace").splitlines(), '[submodule "-"]']:
        if _SECTION.match(line):
            rel = current.get("path", "").strip("/")
            if rel and ".." not in rel.split("/"):
                out.append(Subtree(rel.rsplit("/", 1)[-1], rel, ".gitmodules", current.get("url", "")))
            current = {}
        elif match := _KEY.match(line):
            current[match.group(1)] = match.group(2)
    return out


def _wraps(root: Path) -> list[Subtree]:
    out = []
    for wrap in sorted((root / "subprojects").glob("*.wrap")):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(wrap, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        kind = next((s for s in ("wrap-git", "wrap-file", "wrap-hg", "wrap-svn") if cp.has_section(s)), None)
        if kind is None:
            continue
        sec = cp[kind]
        directory = sec.get("directory", wrap.stem)
        if "/" in directory or directory in ("", ".", ".."):
            continue
        url = sec.get("url") or sec.get("source_url") or ""
        revision = sec.get("revision") if kind == "wrap-git" else None
        out.append(Subtree(directory, f"subprojects/{directory}", f"subprojects/{wrap.name}", url, revision))
    return out


def subtrees(root: Path) -> list[Subtree]:
    """Every folder ``.gitmodules`` and ``subprojects/*.wrap`` declare (a path declared twice: the wrap)."""
    by_path = {s.path: s for s in _gitmodules(root)}
    by_path.update({s.path: s for s in _wraps(root)})
    return sorted(by_path.values(), key=lambda s: s.path)


def missing_required(root: Path) -> list[Subtree]:
    """Required folders (see the module docstring) that are declared but absent or empty."""
    return [s for s in subtrees(root) if s.required and not present(root, s.path)]


def missing_subprojects(root: Path) -> list[dict[str, str]]:
    """Wraps in ``root/subprojects`` whose directory is absent or empty and that meson would download.

    Each entry: ``{"name": <wrap file stem>, "directory": ..., "type": "wrap-git"|..., "url": ...}``.
    """
    sub = root / "subprojects"
    missing: list[dict[str, str]] = []
    for wrap in sorted(sub.glob("*.wrap")):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(wrap, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            missing.append({"name": wrap.stem, "directory": wrap.stem, "type": "unparsable", "url": ""})
            continue
        kind = next((s for s in ("wrap-git", "wrap-file", "wrap-hg", "wrap-svn") if cp.has_section(s)), None)
        if kind is None:  # wrap-redirect and friends: nothing of their own to fetch
            continue
        sec = cp[kind]
        directory = sec.get("directory", wrap.stem)
        d = sub / directory
        if d.is_dir() and any(d.iterdir()):
            continue
        if kind == "wrap-file":
            source_url = sec.get("source_url", "")
            cached = sec.get("source_filename")
            if not source_url or (cached and (sub / "packagecache" / cached).is_file()):
                continue
        url = sec.get("url") or sec.get("source_url") or ""
        missing.append({"name": wrap.stem, "directory": directory, "type": kind, "url": url})
    return missing
