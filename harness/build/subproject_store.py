"""The offline subproject store: submodule and subproject folders of trees the harness has fetched,
kept by content, found again by name plus pinned revision (or closest QEMU version).

Layout under the cache::

    store/objects/<digest[:16]>/     one folder's content (read-only copy), named by its content digest
    store/index.json                 the entries (see :class:`Entry`), written atomically under a lock
    store/harvested/<digest[:16]>    marks a source tree already harvested

Every fetched tree that the harness verified (``tarball``, ``debian-source``, ``git``; never a ``local``
folder, whose content nobody vouches for) is harvested once: each declared folder present in it (see
:mod:`harness.build.subprojects`, ``roms/`` excepted) becomes an entry with the wrap's ``revision`` when
the tree pins one, the submodule commit for git checkouts, the content digest always, and the QEMU
``VERSION`` of the tree it came from. ``python -m harness store add`` fetches trees only to feed it
(for example QEMU source packages of several Debian suites: ``matrices/store.yaml``).

:func:`fill` puts required folders a tree lacks into a copy of it: an entry of the same name and the
pinned revision when the tree pins one (``exact``); otherwise the entry from the QEMU version closest to
the tree's (``substitute``, said so in the provenance: only the build proves it fits). The filled tree
is content-addressed too (``filled/<digest[:16]>``), and its digest, which enters the build key, covers
the original digest plus every filled folder's digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.build.sources import SourceRecord, content_digest
from harness.build.subprojects import Subtree, missing_required, present, subtrees
from harness.engine.locks import file_lock
from harness.errors import SourceError
from harness.live.files import write_json_atomic

HARVESTED_KINDS = ("tarball", "debian-source", "git")
MAX_FOLDER_BYTES = 128 << 20  # a folder larger than this is not worth keeping (roms are skipped anyway)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Entry:
    name: str  # folder name, e.g. "keycodemapdb"
    digest: str  # content digest of the folder ("sha256:...")
    revision: str | None  # pinned revision (wrap revision or submodule commit), when known
    qemu_version: str  # VERSION of the tree it came from
    origin: str  # "<tree name> (<kind> <digest16>) <path>"
    files: int
    added_at: str

    @property
    def object_name(self) -> str:
        return self.digest.removeprefix("sha256:")[:16]


def version_key(text: str) -> tuple[int, int, int]:
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)


def tree_version(root: Path) -> str:
    try:
        return (root / "VERSION").read_text(encoding="utf-8", errors="replace").strip()[:40]
    except OSError:
        return ""


class SubprojectStore:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "store"
        self.objects = self.root / "objects"
        self.index_path = self.root / "index.json"

    # -- reading --------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        out = []
        for item in raw.get("entries", []) if isinstance(raw, dict) else []:
            try:
                entry = Entry(**item)
            except TypeError:
                continue
            if (self.objects / entry.object_name).is_dir():
                out.append(entry)
        return out

    def find(self, wanted: Subtree, version: str) -> tuple[Entry, bool] | None:
        """The entry to fill ``wanted`` with, and whether it is exact (the pinned revision)."""
        named = [e for e in self.entries() if e.name == wanted.name]
        if wanted.revision:
            exact = [e for e in named if e.revision == wanted.revision]
            if exact:
                return exact[0], True
        if not named:
            return None
        want = version_key(version)

        def distance(e: Entry) -> tuple[int, int, int, str]:
            have = version_key(e.qemu_version)
            return (abs(have[0] - want[0]), abs(have[1] - want[1]), abs(have[2] - want[2]), e.digest)

        return min(named, key=distance), False

    # -- writing --------------------------------------------------------------------------------

    def harvest(self, record: SourceRecord, progress: Callable[[str], None] = print) -> list[Entry]:
        """Keep the declared folders of a fetched tree (once per tree digest). Returns new entries."""
        if record.path is None or record.kind not in HARVESTED_KINDS:
            return []
        mark = self.root / "harvested" / record.digest.removeprefix("sha256:")[:16]
        if mark.exists():
            return []
        subs = record.provenance.get("submodules")
        commits = {str(k): str(v) for k, v in subs.items()} if isinstance(subs, dict) else {}
        version = tree_version(record.path)
        added: list[Entry] = []
        with file_lock(self.root / ".lock"):
            known = {(e.name, e.digest) for e in self.entries()}
            for sub in subtrees(record.path):
                if sub.path.startswith("roms/") or not present(record.path, sub.path):
                    continue
                folder = record.path / sub.path
                if _size(folder) > MAX_FOLDER_BYTES:
                    continue
                digest, files = content_digest(folder)
                origin = f"{record.tree_name} ({record.kind} {record.digest[7:23]}) {sub.path}"
                revision = sub.revision or commits.get(sub.path)
                entry = Entry(sub.name, digest, revision, version, origin, files, _now())
                if (entry.name, digest) in known:
                    continue
                self._keep(folder, entry)
                known.add((entry.name, digest))
                added.append(entry)
            self._write([*self.entries(), *added])
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.write_text(record.tree_name + "\n", encoding="utf-8")
        if added:
            progress(f"store: kept {', '.join(e.name for e in added)} from tree {record.tree_name}")
        return added

    def _keep(self, folder: Path, entry: Entry) -> None:
        target = self.objects / entry.object_name
        if target.is_dir():
            return
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging, symlinks=True)
        staging.rename(target)

    def _write(self, entries: list[Entry]) -> None:
        unique = {(e.name, e.digest): e for e in entries}
        rows = [asdict(e) for e in sorted(unique.values(), key=lambda e: (e.name, e.qemu_version, e.digest))]
        write_json_atomic(self.index_path, {"entries": rows})


def _size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
            if total > MAX_FOLDER_BYTES:
                break
    return total


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def lacking_message(tree: str, missing: list[Subtree]) -> str:
    return f"tree {tree} lacks submodules: " + ", ".join(s.describe() for s in missing)


def lacking_hint(tree: str) -> str:
    return (
        "get them with `git submodule update --init` in a git checkout (or `meson subprojects download "
        "NAME` for wraps), build from a release tarball that ships them, or let the harness fill them "
        f"from its subproject store: `fill_subprojects: store` on tree {tree}, or --remedy auto"
    )


def prepare(
    record: SourceRecord, fill_from: str | None, cache_dir: Path, progress: Callable[[str], None] = print
) -> SourceRecord:
    """The fetch stage's last step: harvest the tree into the store, then check its required folders.

    Missing ones are filled from the store when ``fill_from == "store"`` (the tree key
    ``fill_subprojects``), else a SourceError names them and how to get them."""
    if record.path is None:
        return record
    try:
        SubprojectStore(cache_dir).harvest(record, progress)
    except OSError as exc:  # the store is a convenience: a tree that builds must not fail because of it
        progress(f"store: could not keep folders of tree {record.tree_name}: {exc}")
    missing = missing_required(record.path)
    record.provenance["submodules_missing"] = [s.to_json() for s in missing]
    if not missing:
        return record
    if fill_from != "store":
        raise SourceError(lacking_message(record.tree_name, missing), hint=lacking_hint(record.tree_name))
    return fill(record, cache_dir, progress)


def fill(record: SourceRecord, cache_dir: Path, progress: Callable[[str], None] = print) -> SourceRecord:
    """A copy of the tree with its missing required folders filled from the store (see the module
    docstring). Raises SourceError naming exactly the folders to provide when the store lacks any."""
    assert record.path is not None
    missing = missing_required(record.path)
    if not missing:
        return record
    store = SubprojectStore(cache_dir)
    version = tree_version(record.path)
    chosen: list[tuple[Subtree, Entry, bool]] = []
    unmatched: list[Subtree] = []
    for sub in missing:
        found = store.find(sub, version)
        if found is None:
            unmatched.append(sub)
        else:
            chosen.append((sub, *found))
    if unmatched:
        have = sorted({e.name for e in store.entries()})
        raise SourceError(
            f"tree {record.tree_name}: the subproject store has nothing for "
            + ", ".join(s.describe() for s in unmatched)
            + f"; provide these folders in the tree ({', '.join(s.path for s in unmatched)})",
            hint="copy them from a checkout or release tarball of the same QEMU version, or feed the store "
            "with a tree that has them (`python -m harness store add --matrix matrices/store.yaml`); "
            f"the store holds: {', '.join(have) or 'nothing yet'}",
        )
    filled = [_fill_json(sub, entry, exact, version) for sub, entry, exact in chosen]
    blob = json.dumps({"source": record.digest, "filled": filled}, sort_keys=True)
    digest = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
    target = cache_dir / "filled" / digest[7:23]
    with file_lock(target.with_suffix(".lock")):
        if not target.is_dir():
            progress(
                f"tree {record.tree_name}: filling {', '.join(s.path for s, _, _ in chosen)} from the store"
            )
            staging = target.with_name(target.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(record.path, staging, symlinks=True)
            for sub, entry, _ in chosen:
                dest = staging / sub.path
                if dest.is_symlink() or dest.is_file():
                    dest.unlink()
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(store.objects / entry.object_name, dest, symlinks=True)
            staging.rename(target)
    provenance = {**record.provenance, "unfilled_digest": record.digest, "filled": filled}
    return SourceRecord(record.tree_name, record.kind, target, digest, provenance)


def _fill_json(sub: Subtree, entry: Entry, exact: bool, version: str) -> dict[str, Any]:
    how = "exact" if exact else "substitute"
    why = (
        f"revision {sub.revision} as the tree pins"
        if exact
        else f"closest QEMU version in the store ({entry.qemu_version} for a {version or '?'} tree"
        + (f"; the tree pins revision {sub.revision}, which the store lacks" if sub.revision else "")
        + "): the build is the proof it fits"
    )
    return {
        "path": sub.path,
        "name": sub.name,
        "match": how,
        "why": why,
        "revision": entry.revision,
        "wanted_revision": sub.revision,
        "digest": entry.digest,
        "source": entry.origin,
        "source_qemu_version": entry.qemu_version,
    }
