"""A synthetic QEMU history for the bisection tests and bench: the real 10.2.2 tree, then commits.

:func:`make_history` turns the unpacked 10.2.2 tree (with ``patches/qemu-ds`` applied, so it configures
offline) into a git repository: commit 0 is that tree, then one commit per entry of ``plan`` (a list of
:class:`Change`). Harmless commits add a comment to one C file each (a different file every time, all
compiled into ``qemu-system-x86_64``, so every commit really changes the build); the others come from the
tests: a real bug (a patch), a commit that does not build and its fix, a flaky commit and its fix.

Dates are fixed and increasing, so ``git bisect`` walks the same commits whatever the ids; ``salt`` (in
commit 0's message) gives every history its own ids, so a test never meets an earlier test's builds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# util/*.c files every lean x86_64 build compiles (their order is the order harmless commits use them)
HARMLESS_FILES = [
    f"util/{name}.c"
    for name in [
        "cutils",
        "bitmap",
        "bitops",
        "hbitmap",
        "iov",
        "qemu-timer",
        "module",
        "error",
        "qemu-option",
        "qemu-config",
        "path",
        "host-utils",
        "envlist",
        "crc32c",
        "uuid",
        "getauxval",
        "rcu",
        "qemu-thread-posix",
        "log",
        "aio-posix",
        "async",
        "main-loop",
        "buffer",
        "base64",
        "keyval",
        "qsp",
        "range",
        "stats64",
        "guest-random",
        "yank",
        "interval-tree",
        "lockcnt",
        "notify",
        "qdist",
        "qht",
        "readline",
        "thread-pool",
        "throttle",
        "timed-average",
        "unicode",
        "id",
        "hexdump",
        "bufferiszero",
        "qemu-sockets",
    ]
]

# A QEMU that fails the first migration started in its container, then works: the runs of one step
# (one container) disagree, whatever the timing.
FLAKY_FILE = "migration/migration.c"
FLAKY_ANCHOR = "    MigrationChannel *cpr_channel = NULL;\n"
FLAKY_CODE = """
    /* bisect test: the first migration in a container fails, the next ones work */
    {
        int flaky_fd = open("/tmp/cpr-bisect-flaky", O_CREAT | O_EXCL | O_WRONLY, 0600);
        if (flaky_fd >= 0) {
            close(flaky_fd);
            error_setg(errp, "bisect test: this commit fails the first migration in a container");
            return;
        }
    }
"""
BROKEN_FILE = "util/oslib-posix.c"
BROKEN_LINE = '#error "bisect test: this commit does not build"\n'

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bisect Test",
    "GIT_AUTHOR_EMAIL": "bisect-test@example.invalid",
    "GIT_COMMITTER_NAME": "Bisect Test",
    "GIT_COMMITTER_EMAIL": "bisect-test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass
class Change:
    """One commit of the history: its subject and what it does to the work tree."""

    kind: str  # "harmless" | "bug" | "broken" | "unbroken" | "flaky" | "unflaky"
    subject: str
    apply: Callable[[Path], None] = field(repr=False)


@dataclass
class History:
    work: Path  # the repository (a work tree)
    commits: list[str]  # commit 0 (the base) first
    kinds: list[str]  # kind of each commit ("base" for commit 0)

    def index(self, kind: str) -> int:
        return self.kinds.index(kind)

    def commit(self, kind: str) -> str:
        return self.commits[self.index(kind)]


def git(cwd: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    res = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return res.stdout.strip()


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        with (work / rel).open("a", encoding="utf-8") as f:
            f.write(text)

    return apply


def _insert_after(rel: str, anchor: str, text: str) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        path = work / rel
        source = path.read_text(encoding="utf-8")
        assert source.count(anchor) == 1, f"{rel}: anchor not found once"
        path.write_text(source.replace(anchor, anchor + text), encoding="utf-8")

    return apply


def _remove(rel: str, text: str) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        path = work / rel
        source = path.read_text(encoding="utf-8")
        assert text in source, f"{rel}: text to remove not found"
        path.write_text(source.replace(text, "", 1), encoding="utf-8")

    return apply


def _patch(patch: Path) -> Callable[[Path], None]:
    def apply(work: Path) -> None:
        subprocess.run(["patch", "-p1", "-s", "--batch", "-i", str(patch)], cwd=work, check=True)

    return apply


def harmless(n: int) -> Change:
    rel = HARMLESS_FILES[n % len(HARMLESS_FILES)]
    return Change(
        "harmless", f"util: comment in {rel} (#{n})", _append(rel, f"/* bisect test: note {n} */\n")
    )


def plan_with(
    total: int, bug_at: int, bug: Path, bug_subject: str, broken_at: int | None, flaky_at: int | None
) -> list[Change]:
    """``total`` commits after the base: harmless ones, the bug at ``bug_at`` (1-based), a commit that does
    not build at ``broken_at`` (fixed by the next), a flaky one at ``flaky_at`` (undone by the next)."""
    taken = [bug_at]
    for special in (broken_at, flaky_at):
        if special is not None:
            taken += [special, special + 1]
    assert len(set(taken)) == len(taken) and max(taken) <= total, f"positions collide: {taken}"
    plan: list[Change] = []
    n = 0
    for position in range(1, total + 1):
        if position == bug_at:
            plan.append(Change("bug", bug_subject, _patch(bug)))
        elif position == broken_at:
            plan.append(
                Change("broken", "util: a change that does not build", _append(BROKEN_FILE, BROKEN_LINE))
            )
        elif broken_at is not None and position == broken_at + 1:
            plan.append(Change("unbroken", "util: build again", _remove(BROKEN_FILE, BROKEN_LINE)))
        elif position == flaky_at:
            plan.append(
                Change(
                    "flaky", "migration: a flaky change", _insert_after(FLAKY_FILE, FLAKY_ANCHOR, FLAKY_CODE)
                )
            )
        elif flaky_at is not None and position == flaky_at + 1:
            plan.append(
                Change("unflaky", "migration: undo the flaky change", _remove(FLAKY_FILE, FLAKY_CODE))
            )
        else:
            plan.append(harmless(n))
            n += 1
    return plan


def make_history(tree: Path, dest: Path, plan: list[Change], salt: str) -> History:
    """The repository ``dest/work``: ``tree`` plus ``patches/qemu-ds`` as commit 0, then ``plan``."""
    work = dest / "work"
    subprocess.run(["cp", "-a", str(tree), str(work)], check=True)
    for line in (REPO / "patches" / "qemu-ds" / "series").read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            _patch(REPO / "patches" / "qemu-ds" / name)(work)
    git(work, "init", "-q", "-b", "master")
    # fast packing: the harness fetches this repository into its mirror through upload-pack
    for key, value in (("core.looseCompression", "1"), ("pack.compression", "1"), ("pack.window", "0")):
        git(work, "config", key, value)
    git(work, "add", "-A", "--force")  # QEMU's .gitignore leaves out the vendored subprojects/*/
    git(
        work,
        "commit",
        "-q",
        "-m",
        f"QEMU 10.2.2 (+ patches/qemu-ds), bisect test {salt}",
        date="2026-01-01T00:00:00Z",
    )
    commits, kinds = [git(work, "rev-parse", "HEAD")], ["base"]
    for number, change in enumerate(plan, start=1):
        change.apply(work)
        git(work, "add", "-A")
        date = f"2026-01-01T{number // 60:02d}:{number % 60:02d}:00Z"
        git(work, "commit", "-q", "-m", change.subject, date=date)
        commits.append(git(work, "rev-parse", "HEAD"))
        kinds.append(change.kind)
    return History(work, commits, kinds)


def remove_cache_entries(cache: Path, built: list[dict[str, str]], url: str) -> None:
    """Remove what a test's bisection left in a shared cache: its builds, its checkouts, its mirror."""
    from harness.build.gitsrc import mirror_path

    for entry in built:
        if entry.get("key"):
            shutil.rmtree(cache / "builds" / entry["key"], ignore_errors=True)
        if entry.get("source_dir") and Path(entry["source_dir"]).parent == cache / "trees":
            shutil.rmtree(entry["source_dir"], ignore_errors=True)
    shutil.rmtree(mirror_path(cache, url), ignore_errors=True)
