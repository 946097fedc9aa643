"""The git side of a bisection: refs resolved to commits, what a commit says, and ``git bisect`` itself.

``git bisect`` runs in a private bare clone of the tree's repository (``--shared``: nothing is copied),
made in a temporary folder and removed when the bisection ends, so the cache's mirror (or a user's
``local`` checkout) never carries bisection state and two bisections never meet. In a bare repository
``git bisect`` checks nothing out: it names the next commit in ``BISECT_HEAD``. Every git call is an argv
list with ``LC_ALL=C`` (its messages are parsed), through :func:`harness.build.gitsrc.run_git`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.build.gitsrc import last_line, run_git
from harness.errors import ConfigError
from harness.store.bisect_record import Commit

_FIRST_BAD = re.compile(r"^([0-9a-f]{40,64}) is the first bad commit$", re.M)
_SKIPPED_ONLY = "There are only 'skip'ped commits left to test."
_CANDIDATE = re.compile(r"^([0-9a-f]{40,64})$", re.M)
_BISECT_ALL = re.compile(r"^([0-9a-f]{40,64}) \((?:.*, )?dist=(\d+)\)$", re.M)


def commit_of(repo: Path, ref: str, what: str) -> str:
    """The full id of the commit ``ref`` names in ``repo`` (ConfigError naming ``what`` otherwise)."""
    if ref.startswith("-"):
        raise ConfigError(f"{what} {ref!r} starts with '-'", hint="pass a branch, tag or commit id")
    res = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd=repo, check=False
    )
    if res.returncode != 0 or not res.stdout.strip():
        raise ConfigError(
            f"{what} {ref!r} names no commit in {repo}",
            hint="pass a branch, tag or commit id of the tree's repository (`git log --oneline` there)",
        )
    return res.stdout.strip()


def describe(repo: Path, commit: str) -> Commit:
    """Subject, author and author date of ``commit``."""
    res = run_git(
        ["log", "-1", "--format=%H%x00%s%x00%an <%ae>%x00%aI", commit, "--"], cwd=repo, what="bisect"
    )
    sha, subject, author, date = (res.stdout.rstrip("\n").split("\0") + ["", "", "", ""])[:4]
    return Commit(sha or commit, subject, author, date)


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    res = run_git(["merge-base", "--is-ancestor", older, newer], cwd=repo, check=False)
    return res.returncode == 0


def count(repo: Path, good: str, bad: str) -> int:
    """Commits in ``good..bad``: the candidates for the first bad commit."""
    res = run_git(["rev-list", "--count", f"{good}..{bad}"], cwd=repo, what="bisect")
    return int(res.stdout.strip() or 0)


def distance(repo: Path, a: str, b: str) -> int:
    """Commits that one of ``a`` and ``b`` has and the other has not (how far apart two trees are)."""
    res = run_git(["rev-list", "--count", f"{a}...{b}"], cwd=repo, check=False)
    return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip().isdigit() else 1 << 30


def parent_of(repo: Path, commit: str) -> list[str]:
    res = run_git(["rev-list", "--parents", "-n", "1", commit], cwd=repo, what="bisect")
    return res.stdout.split()[1:]


@dataclass
class Standing:
    """Where ``git bisect`` stands after a mark: still going, a first bad commit, or only skips left."""

    next: str | None = None
    first_bad: str | None = None
    candidates: list[str] = field(default_factory=list)  # only skipped commits left: any of these

    @property
    def done(self) -> bool:
        return self.first_bad is not None or bool(self.candidates)


class GitBisect:
    """``git bisect`` in a private bare clone of ``repo`` (a context manager: the clone goes at the end)."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.folder = Path(tempfile.mkdtemp(prefix=f"cpr-harness-bisect-{os.getpid()}-"))
        self.git_dir = self.folder / "bisect.git"

    def __enter__(self) -> GitBisect:
        try:
            run_git(
                ["clone", "--quiet", "--bare", "--shared", "--no-tags", str(self.repo), str(self.git_dir)],
                what="bisect",
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _git(self, *args: str) -> tuple[int, str]:
        res = run_git(list(args), cwd=self.git_dir, check=False, what="bisect")
        return res.returncode, res.stdout + res.stderr

    def start(self, bad: str, good: str) -> Standing:
        # A cache mirror keeps its refs under refs/cpr/ and its HEAD names no branch: the clone has no
        # refs and an unborn HEAD, which git bisect refuses ("bad HEAD - strange symbolic ref"). The
        # commits are there (--shared); a detached HEAD at bad is where git bisect starts from.
        code, out = self._git("update-ref", "--no-deref", "HEAD", bad)
        if code != 0:
            raise ConfigError(f"git update-ref HEAD {bad[:12]} failed: {last_line(out)}")
        code, out = self._git("bisect", "start", "--no-checkout", bad, good)
        if code != 0:
            raise ConfigError(f"git bisect start {bad[:12]} {good[:12]} failed: {last_line(out)}")
        return self._where(out)

    def mark(self, commit: str, term: str) -> Standing:
        """Tell git bisect that ``commit`` is ``good``, ``bad`` or ``skip``; where it stands now."""
        if term not in ("good", "bad", "skip"):
            raise ValueError(term)
        code, out = self._git("bisect", term, commit)
        if code not in (0, 2):  # 2: only skipped commits are left
            raise ConfigError(f"git bisect {term} {commit[:12]} failed: {last_line(out)}")
        return self._where(out)

    def _where(self, out: str) -> Standing:
        found = _FIRST_BAD.search(out)
        if found:
            return Standing(first_bad=found.group(1))
        if _SKIPPED_ONLY in out:
            tail = out.split("could be any of:", 1)[-1]
            return Standing(candidates=_CANDIDATE.findall(tail.split("We cannot bisect more", 1)[0]))
        return Standing(next=self._pick())

    def _refs(self, pattern: str) -> list[str]:
        code, out = self._git("for-each-ref", "--format=%(objectname)", pattern)
        return out.split() if code == 0 else []

    def _pick(self) -> str | None:
        """The next commit to test: ``git bisect``'s own choice until a commit was skipped; after that,
        the testable commit that best halves the range (git's measure, ``rev-list --bisect-all``), the
        oldest of equals, where git would jump to a pseudo-random neighbour that depends on commit ids.
        A skipped commit then costs one step (its neighbour), and the walk is the same for any ids."""
        skipped = set(self._refs("refs/bisect/skip-*"))
        if not skipped:
            code, head = self._git("rev-parse", "--verify", "--quiet", "BISECT_HEAD")
            return head.strip() if code == 0 else None
        goods = self._refs("refs/bisect/good-*")
        code, out = self._git("rev-list", "--bisect-all", "refs/bisect/bad", "--not", *goods)
        distance = {m.group(1): int(m.group(2)) for m in _BISECT_ALL.finditer(out)} if code == 0 else {}
        code, out = self._git("rev-list", "--reverse", "refs/bisect/bad", "--not", *goods)
        bad = self._refs("refs/bisect/bad")
        oldest_first = [c for c in out.split() if c not in skipped and c not in bad and c in distance]
        if not oldest_first:
            return None
        best = max(distance[c] for c in oldest_first)
        return next(c for c in oldest_first if distance[c] == best)

    def remaining(self) -> list[str]:
        """The commits that may still be the first bad one (the range left), newest first."""
        code, out = self._git("rev-list", "refs/bisect/bad", "--not", *self._refs("refs/bisect/good-*"))
        return out.split() if code == 0 else []
