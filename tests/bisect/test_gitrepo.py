"""git bisect driven in a private clone: answers, skips, the range left, refs and ancestry (real git)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sourcekit import GIT_ENV as ENV

from harness.bisect import gitrepo
from harness.errors import ConfigError


def linear(path: Path, n: int, salt: str = "") -> list[str]:
    """A repository with commits c0..c<n-1> (one file changing), oldest first; ``salt`` changes the ids."""
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "master"], cwd=path, check=True, env={**os.environ, **ENV})
    commits = []
    for i in range(n):
        (path / "f").write_text(f"{i} {salt}\n")
        env = {**os.environ, **ENV, "GIT_AUTHOR_DATE": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"}
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"]
        subprocess.run(["git", "add", "f"], cwd=path, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", f"c{i}"], cwd=path, check=True, env=env)
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True, env=env, capture_output=True)
        commits.append(out.stdout.decode().strip())
    return commits


def drive(
    repo: Path, commits: list[str], first_bad: int, skip: set[int]
) -> tuple[gitrepo.Standing, list[int]]:
    """Bisect c0 (good) .. c-last (bad) where commits from ``first_bad`` on are bad, ``skip`` skipped."""
    index = {c: i for i, c in enumerate(commits)}
    visited = []
    with gitrepo.GitBisect(repo) as git:
        standing = git.start(commits[-1], commits[0])
        while not standing.done:
            assert standing.next is not None
            i = index[standing.next]
            visited.append(i)
            term = "skip" if i in skip else ("bad" if i >= first_bad else "good")
            standing = git.mark(standing.next, term)
        folder = git.folder
    assert not folder.exists(), "the private clone is removed"
    return standing, visited


def test_bisects_in_a_cache_mirror(tmp_path: Path) -> None:
    """The cache's mirror of a git tree holds its refs under refs/cpr/ and an unborn HEAD."""
    from harness.build.gitsrc import resolve

    commits = linear(tmp_path / "r", 12)
    mirror, tip, _ = resolve("t", str(tmp_path / "r"), "master", tmp_path / "cache", progress=lambda _: None)
    assert tip == commits[-1]
    standing, visited = drive(mirror, commits, first_bad=7, skip=set())
    assert standing.first_bad == commits[7] and len(visited) <= 4


def test_first_bad_commit_found_in_log2_steps(tmp_path: Path) -> None:
    commits = linear(tmp_path / "r", 44)
    standing, visited = drive(tmp_path / "r", commits, first_bad=28, skip=set())
    assert standing.first_bad == commits[28]
    assert len(visited) <= 6  # ceil(log2 43)
    assert (
        not (tmp_path / "r" / "BISECT_LOG").exists() and not (tmp_path / "r" / ".git" / "BISECT_LOG").exists()
    )


@pytest.mark.parametrize("salt", ["a", "b", "c"])
def test_skipped_commits_are_stepped_around_the_same_way_whatever_the_ids(tmp_path: Path, salt: str) -> None:
    """The shape of the real test's history: commits 26 (flaky) and 32 (broken) are skipped. After a skip
    the next commit is the testable one that best halves the range (not git's id-dependent jump), so the
    walk is the same for every set of ids, and each skip costs one step."""
    commits = linear(tmp_path / "r", 44, salt)
    standing, visited = drive(tmp_path / "r", commits, first_bad=28, skip={26, 32})
    assert standing.first_bad == commits[28]
    assert visited == [21, 32, 31, 26, 25, 28, 27]
    assert len(visited) <= 6 + 2  # ceil(log2 43) + one per skipped commit


def test_only_skipped_commits_left_gives_the_candidates(tmp_path: Path) -> None:
    commits = linear(tmp_path / "r", 10)
    standing, visited = drive(tmp_path / "r", commits, first_bad=5, skip={4, 5})
    assert standing.first_bad is None and 3 in visited and 6 in visited  # good below, bad above
    assert set(standing.candidates) == {commits[4], commits[5], commits[6]}


def test_remaining_is_the_range_left(tmp_path: Path) -> None:
    commits = linear(tmp_path / "r", 10)
    with gitrepo.GitBisect(tmp_path / "r") as git:
        standing = git.start(commits[-1], commits[0])
        assert len(git.remaining()) == 9
        assert standing.next is not None
        git.mark(standing.next, "good")
        left = git.remaining()
        assert commits[-1] in left and standing.next not in left and len(left) < 9


def test_refs_describe_ancestry_and_counts(tmp_path: Path) -> None:
    commits = linear(tmp_path / "r", 5)
    repo = tmp_path / "r"
    assert gitrepo.commit_of(repo, "master", "--bad") == commits[-1]
    assert gitrepo.commit_of(repo, commits[1][:10], "--good") == commits[1]
    info = gitrepo.describe(repo, commits[2])
    assert (
        info.subject == "c2" and info.author == "t <t@example.invalid>" and info.date.startswith("2026-01-01")
    )
    assert gitrepo.is_ancestor(repo, commits[0], commits[4]) and not gitrepo.is_ancestor(
        repo, commits[4], commits[0]
    )
    assert gitrepo.count(repo, commits[0], commits[4]) == 4
    assert gitrepo.distance(repo, commits[1], commits[3]) == 2
    assert gitrepo.parent_of(repo, commits[3]) == [commits[2]]


@pytest.mark.parametrize("ref", ["no-such-branch", "-c", "deadbeefdeadbeef"])
def test_unknown_ref_is_one_message(tmp_path: Path, ref: str) -> None:
    linear(tmp_path / "r", 2)
    with pytest.raises(ConfigError) as err:
        gitrepo.commit_of(tmp_path / "r", ref, "--good")
    assert "--good" in err.value.message and ref in err.value.message
