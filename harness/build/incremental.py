"""Start a build from an earlier build's directory, where that is safe: ninja then rebuilds only what changed.

A bisection builds many commits of one tree with one profile. Each step is still a normal build with its
own key, cache folder and record (:mod:`harness.build.builder`), but instead of an empty build directory
it may start from a copy of an earlier step's (a :class:`Seed`). That is safe only when the copy means
exactly what a fresh configure would produce, so :func:`refusal` allows it only for

- the same image (compiler, libraries, meson: what configure found),
- the same configure flags and ninja targets (the same profile),
- the same ccache trust domain (the seed's build directory was written by a tree of that domain),
- fixed paths: every build sees its source at ``/src`` and builds in ``/build``, whatever the commit, so
  the paths ninja and meson recorded stay true in the copy,
- a seed that passed and whose build directory is a real folder of the build user holding
  ``build.ninja``, and a new build whose own directory is still empty (an interrupted build of the same
  key goes on in its own directory instead).

ninja decides what to rebuild from modification times, and two checkouts of two commits have unrelated
ones. :func:`sync_mtimes` makes them tell the truth: every file of the new tree whose content equals the
seed tree's gets the seed tree's mtime (older than the seed's outputs: nothing to do), every file that
differs or is new gets "now" (newer than every output in the copy: rebuilt, with whatever depends on
it). Two limits of mtimes are handled conservatively:

- configure's own inputs (``configure``, ``python/``, ``subprojects/``, ...) are read by configure, not
  tracked by ninja: when one changed, configure runs again (it re-runs meson in the copied directory,
  and ninja's log still spares what did not change); otherwise it is skipped;
- a new header whose name another header already has could shadow it in an include path, which no
  recorded dependency sees: such a change is not seeded at all (a fresh build, ccache still warm).

The mtimes of a shared source tree are changed under a lock held for the whole build (:func:`lock_for`),
so two seeded builds of one tree never see each other's times. Builds that are not seeded do not care
about a tree's mtimes: every output they reuse (an interrupted build of the same key) was compiled from
the same content.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.engine.containers import ContainerSession
from harness.engine.sandbox import build_user
from harness.store.build_record import BuildRecord

# What configure reads that ninja does not track (a change to one of them re-runs configure).
CONFIGURE_FILES = frozenset(
    {"configure", "meson.options", "meson_options.txt", "pythondeps.toml", ".gitmodules", "Makefile"}
)
CONFIGURE_PREFIXES = ("python/", "subprojects/", "scripts/meson-buildoptions", "configs/meson/")
SKIP_DIRS = frozenset({".git"})


@dataclass(frozen=True)
class Seed:
    """A finished build whose build directory (``home/obj``) a later build of the same cell may copy."""

    key: str
    home: Path
    source_dir: Path
    image_id: str
    configure: tuple[str, ...]
    targets: tuple[str, ...]
    domain: str  # ccache trust domain of the tree that wrote the directory
    label: str = ""  # what it was built from, for the record (a commit)

    @property
    def obj(self) -> Path:
        return self.home / "obj"

    @classmethod
    def of(cls, record: BuildRecord, domain: str, label: str = "") -> Seed | None:
        """The seed a passed build record offers (None when it offers none)."""
        if not record.ok or not record.key or not record.source_dir or not record.log or not record.image:
            return None
        return cls(
            key=record.key,
            home=Path(record.log).parent,
            source_dir=Path(record.source_dir),
            image_id=record.image.id,
            configure=tuple(record.configure),
            targets=tuple(record.targets),
            domain=domain,
            label=label,
        )


def refusal(
    seed: Seed, *, image_id: str, configure: list[str], targets: list[str], domain: str, obj: Path
) -> str:
    """Why ``seed`` may not start the build whose directory is ``obj`` ("" when it may)."""
    if seed.image_id != image_id:
        return f"another image ({seed.image_id[:19]})"
    if list(seed.configure) != list(configure) or list(seed.targets) != list(targets):
        return "another profile (configure flags or targets differ)"
    if seed.domain != domain:
        return f"another ccache trust domain ({seed.domain})"
    if seed.obj.resolve() == obj.resolve():
        return "the same build"
    try:
        st = os.lstat(seed.obj)
    except FileNotFoundError:
        return "its build directory is gone"
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != build_user().uid:
        return "its build directory is not a folder of the build user"
    if not os.path.isfile(seed.obj / "build.ninja") or os.path.islink(seed.obj / "build.ninja"):
        return "its build directory holds no build.ninja"
    if not os.path.isdir(seed.source_dir):
        return "its source tree is gone"
    if obj.is_dir() and any(obj.iterdir()):
        return "this build already has a build directory (an interrupted build goes on in it)"
    return ""


@dataclass
class Changes:
    """How a tree differs from another, by relative path (``.git`` left out)."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    header_names: set[str] = field(default_factory=set)  # basenames of the headers both trees have

    @property
    def count(self) -> int:
        return len(self.changed) + len(self.added) + len(self.removed)

    def configure_inputs(self) -> list[str]:
        """The changed paths that configure reads and ninja does not track."""
        return [
            p
            for p in sorted([*self.changed, *self.added, *self.removed])
            if p in CONFIGURE_FILES or p.startswith(CONFIGURE_PREFIXES)
        ]

    def shadowing_headers(self) -> list[str]:
        """New headers whose name another header of the tree has too (include-path shadowing)."""
        names = [os.path.basename(p) for p in self.added if p.endswith(".h")]
        taken = self.header_names | {n for n in names if names.count(n) > 1}
        return sorted(p for p in self.added if p.endswith(".h") and os.path.basename(p) in taken)


def _entries(root: Path) -> dict[str, os.stat_result]:
    """Every file and symlink under ``root`` (relative path -> lstat), never following a link."""
    out: dict[str, os.stat_result] = {}
    for folder, dirs, files in os.walk(root):
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and d not in links]
        rel = os.path.relpath(folder, root)
        for name in files + links:
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                out[name if rel == "." else f"{rel}/{name}"] = st
    return out


def _same(a: Path, sa: os.stat_result, b: Path, sb: os.stat_result) -> bool:
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode) or (sa.st_mode & 0o111) != (sb.st_mode & 0o111):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    return sa.st_size == sb.st_size and filecmp.cmp(a, b, shallow=False)


def sync_mtimes(previous: Path, current: Path, now: float | None = None) -> Changes:
    """Give the files of ``current`` the mtimes that make ninja rebuild exactly what differs from
    ``previous`` (see the module docstring) and return the differences."""
    now_ns = int((now if now is not None else time.time()) * 1e9)
    before, after = _entries(previous), _entries(current)
    changes = Changes(removed=sorted(set(before) - set(after)))
    for rel, st in sorted(after.items()):
        old = before.get(rel)
        if old is not None and rel.endswith(".h"):
            changes.header_names.add(os.path.basename(rel))
        if old is None:
            changes.added.append(rel)
            times = (now_ns, now_ns)
        elif _same(previous / rel, old, current / rel, st):
            times = (old.st_atime_ns, old.st_mtime_ns)
        else:
            changes.changed.append(rel)
            times = (now_ns, now_ns)
        os.utime(current / rel, ns=times, follow_symlinks=False)
    return changes


def lock_for(cache: Path, source: Path) -> Path:
    """The lock held while a seeded build changes ``source``'s mtimes and builds from it."""
    return cache / "locks" / f"mtimes-{hashlib.sha256(str(source).encode()).hexdigest()[:16]}.lock"


@dataclass
class SeedPlan:
    """A seed that will be used: the differences found and whether configure runs again."""

    seed: Seed
    changes: Changes
    run_configure: bool
    seconds: float  # to compare the trees and set the mtimes

    def describe(self) -> dict[str, Any]:
        why = self.changes.configure_inputs()
        return {
            "seed": self.seed.key[:16],
            "seed_label": self.seed.label,
            "used": True,
            "changed_files": self.changes.count,
            "configure": ("run: " + ", ".join(why[:5])) if self.run_configure else "skipped",
            "sync_s": round(self.seconds, 2),
        }


def prepare(seed: Seed, source: Path) -> SeedPlan | str:
    """Set ``source``'s mtimes against the seed's tree (hold :func:`lock_for` around this and the build);
    returns the plan, or why the seed is not used after all (a new header that could shadow another)."""
    t0 = time.monotonic()
    changes = sync_mtimes(seed.source_dir, source)
    shadowing = changes.shadowing_headers()
    if shadowing:
        return "new headers that could shadow others in an include path: " + ", ".join(shadowing[:5])
    return SeedPlan(seed, changes, bool(changes.configure_inputs()), time.monotonic() - t0)


def plan_for(
    seed: Seed,
    record: BuildRecord,
    image_id: str,
    domain: str,
    source: Path,
    obj: Path,
    progress: Callable[[str], None],
) -> SeedPlan | None:
    """The plan when ``seed`` may start the build of ``record`` (``source``'s mtimes then set: the caller
    holds :func:`lock_for` from here until ninja is done), else None with the reason in
    ``record.incremental``."""
    why = refusal(
        seed, image_id=image_id, configure=record.configure, targets=record.targets, domain=domain, obj=obj
    )
    if not why:
        plan = prepare(seed, source)
        if isinstance(plan, SeedPlan):
            record.incremental = plan.describe()
            return plan
        why = plan
    record.incremental = {"seed": seed.key[:16], "seed_label": seed.label, "used": False, "why": why}
    progress(f"build {record.cell}: not starting from build {seed.key[:16]}: {why}")
    return None


def copy_seed(
    box: ContainerSession, log: IO[str], record: BuildRecord, plan: SeedPlan, progress: Callable[[str], None]
) -> SeedPlan | None:
    """Copy the seed's build directory (mounted at ``/seed``) into ``/build``, inside the container and as
    the build user: the host never walks a folder a build wrote. On failure ``/build`` is emptied again
    and the build starts from scratch (None)."""
    t0 = time.monotonic()
    configure = "runs again" if plan.run_configure else "skipped"
    progress(
        f"build {record.cell}: starting from build {plan.seed.key[:16]} ({plan.seed.label}): "
        f"{plan.changes.count} file(s) differ, configure {configure}"
    )
    copy = box.exec(["cp", "-a", "/seed/.", "/build/"])
    log.write(
        f"$ cp -a /seed/. /build/   (build directory of {plan.seed.key[:16]})\n[exit {copy.exit_code}]\n"
    )
    record.durations["seed_copy_s"] = round(time.monotonic() - t0, 2)
    if copy.exit_code == 0:
        return plan
    box.exec(["find", "/build", "-mindepth", "1", "-delete"])
    record.incremental = {
        **(record.incremental or {}),
        "used": False,
        "why": f"copy failed: {copy.output[-200:]}",
    }
    return None
