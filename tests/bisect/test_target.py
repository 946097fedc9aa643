"""Which tree a bisection bisects, the tree at one commit, and the trees it refuses."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from sourcekit import GIT_ENV, git

from harness.bisect.target import find_target, repository
from harness.config.matrix import load_matrix
from harness.errors import ConfigError

PROFILE = """\
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu]
    targets: [qemu-system-x86_64]
scenarios: [normal, cpr-exec]
accels: [tcg]
"""


def matrix(tmp_path: Path, trees: str, extra: str = "") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text("trees:\n" + textwrap.indent(textwrap.dedent(trees), "  ") + PROFILE + extra)
    return path


def checkout(path: Path, commits: int = 3) -> list[str]:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    out = []
    for i in range(commits):
        (path / "f").write_text(str(i))
        git(path, "add", "f")
        git(path, "commit", "-qm", f"c{i}")
        out.append(git(path, "rev-parse", "HEAD"))
    return out


def load(path: Path):  # type: ignore[no-untyped-def]
    return load_matrix(path, repo_root=REPO)


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)


def test_git_tree_scenario_cell(tmp_path: Path) -> None:
    m = load(
        matrix(
            tmp_path,
            "up:\n  kind: git\n  image: debian-trixie\n  url: ./up.git\n  ref: main\n  ccache: mine\n",
        )
    )
    t = find_target(m, "up/lean/cpr-exec/tcg")
    assert t.kind == "scenario" and t.tree_name == "up" and t.url == str(tmp_path / "up.git")
    tree = t.tree_at("c" * 40)
    assert (tree.kind, tree.ref, tree.url, tree.image, tree.ccache) == (
        "git",
        "c" * 40,
        t.url,
        "debian-trixie",
        "mine",
    )
    cell = t.scenario_at("c" * 40)
    assert cell is not None and cell.id == "up/lean/cpr-exec/tcg" and cell.build.tree.ref == "c" * 40
    assert find_target(m, "up/lean").kind == "build"


def test_local_checkout_keeps_its_own_ccache_domain(tmp_path: Path) -> None:
    commits = checkout(tmp_path / "src")
    m = load(matrix(tmp_path, "mine:\n  kind: local\n  image: debian-trixie\n  path: src\n"))
    t = find_target(m, "mine/lean/normal/tcg")
    tree = t.tree_at(commits[1])
    assert tree.kind == "git" and tree.url == str(tmp_path / "src") and tree.ccache == "local-mine"
    repo, found = repository(t, tmp_path / "cache", [("--good", "HEAD~2"), ("--bad", "HEAD")], print)
    assert repo == tmp_path / "src" and found == [commits[0], commits[2]]


def test_upgrade_bisects_the_target_tree(tmp_path: Path) -> None:
    trees = (
        "old:\n  kind: prebuilt\n  image: qemu-trixie\n  binary: /usr/bin/qemu-system-x86_64\n"
        "up:\n  kind: git\n  image: debian-trixie\n  url: /x/up.git\n  ref: main\n"
    )
    upgrades = "upgrades:\n  o2u:\n    source: old/prebuilt\n    target: up/lean\n    scenarios: [cpr-exec]\n"
    m = load(matrix(tmp_path, trees, upgrades))
    t = find_target(m, "upgrade/o2u/cpr-exec/tcg")
    assert (
        t.kind == "upgrade" and t.tree_name == "up" and t.fixed is not None and t.fixed.id == "old/prebuilt"
    )
    cell = t.scenario_at("d" * 40)
    assert cell is not None and cell.target is not None and cell.target.tree.ref == "d" * 40
    assert cell.build.tree.kind == "prebuilt"


def test_trees_without_commits_are_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    trees = (
        "deb:\n  kind: debian-source\n  image: debian-trixie\n  version: '1:10.2.2+ds-1'\n"
        "plain:\n  kind: local\n  image: debian-trixie\n  path: plain\n"
    )
    m = load(matrix(tmp_path, trees))
    with pytest.raises(ConfigError) as err:
        find_target(m, "deb/lean/normal/tcg")
    assert "kind debian-source" in err.value.message and "git" in (err.value.hint or "")
    with pytest.raises(ConfigError) as err:
        find_target(m, "plain/lean")
    assert "not the top of a git checkout" in err.value.message
    with pytest.raises(ConfigError) as err:
        find_target(m, "deb/lean/boot")
    assert "no cell 'deb/lean/boot'" in err.value.message


def test_a_subfolder_of_a_checkout_is_not_a_checkout(tmp_path: Path) -> None:
    checkout(tmp_path / "repo")
    (tmp_path / "repo" / "sub").mkdir()
    m = load(matrix(tmp_path, "s:\n  kind: local\n  image: debian-trixie\n  path: repo/sub\n"))
    with pytest.raises(ConfigError):
        find_target(m, "s/lean")


def test_git_refs_resolve_in_the_mirror(tmp_path: Path) -> None:
    commits = checkout(tmp_path / "work")
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(tmp_path / "work"), str(tmp_path / "up.git")], check=True
    )
    m = load(
        matrix(
            tmp_path, f"up:\n  kind: git\n  image: debian-trixie\n  url: {tmp_path / 'up.git'}\n  ref: HEAD\n"
        )
    )
    t = find_target(m, "up/lean")
    repo, found = repository(
        t, tmp_path / "cache", [("--good", commits[0]), ("--bad", "main")], lambda _: None
    )
    assert found == [commits[0], commits[2]] and (repo / "HEAD").is_file()
    with pytest.raises(ConfigError) as err:
        repository(t, tmp_path / "cache", [("--bad", "no-such-branch")], lambda _: None)
    assert err.value.message.startswith("--bad 'no-such-branch'")
