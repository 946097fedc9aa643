"""Bad input to ``python -m harness bisect`` is one message and exit 2, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_harness
from sourcekit import GIT_ENV, git

MATRIX = """\
trees:
  mine:
    kind: local
    image: debian-trixie
    path: {path}
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu]
    targets: [qemu-system-x86_64]
scenarios: [cpr-exec]
accels: [tcg]
"""


@pytest.fixture
def local_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q")
    for i in range(3):
        (src / "f").write_text(str(i))
        git(src, "add", "f")
        git(src, "commit", "-qm", f"c{i}")
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(path=src))
    return path


def bisect(tmp_path: Path, *args: str) -> tuple[int, str]:
    done = run_harness(
        "bisect",
        *args,
        "--cache",
        str(tmp_path / "cache"),
        "--reports",
        str(tmp_path / "reports"),
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--good", "no-such-ref", "--bad", "HEAD"], ["--good 'no-such-ref'", "names no commit"]),
        (["--good", "HEAD", "--bad", "HEAD~2"], ["is not an ancestor of --bad HEAD~2", "swapped"]),
        (["--good", "HEAD", "--bad", "HEAD"], ["same commit"]),
        (
            ["--good", "HEAD~1", "--bad", "HEAD", "--cell", "mine/lean/normal/tcg"],
            ["no cell 'mine/lean/normal/tcg'"],
        ),
    ],
)
def test_bad_refs_and_cells(tmp_path: Path, local_matrix: Path, args: list[str], words: list[str]) -> None:
    cell = [] if "--cell" in args else ["--cell", "mine/lean/cpr-exec/tcg"]
    code, err = bisect(tmp_path, "--matrix", str(local_matrix), *cell, *args)
    assert code == 2
    assert err.startswith("error: ") and "fix: " in err and all(w in err for w in words), err
    assert not (tmp_path / "reports").exists()  # nothing started


def test_a_tree_without_commits(tmp_path: Path) -> None:
    code, err = bisect(tmp_path, "--cell", "upstream-10.2/lean/cpr-exec/tcg", "--good", "a", "--bad", "b")
    assert code == 2 and "tree upstream-10.2 is of kind debian-source" in err and "kind git" in err


def test_a_local_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    path = tmp_path / "m.yaml"
    path.write_text(MATRIX.format(path=tmp_path / "plain"))
    code, err = bisect(tmp_path, "--matrix", str(path), "--cell", "mine/lean", "--good", "a", "--bad", "b")
    assert code == 2 and "not the top of a git checkout" in err


def test_runs_must_be_positive(tmp_path: Path, local_matrix: Path) -> None:
    code, err = bisect(
        tmp_path,
        "--matrix",
        str(local_matrix),
        "--cell",
        "mine/lean",
        "--good",
        "HEAD~1",
        "--bad",
        "HEAD",
        "--runs",
        "0",
    )
    assert code == 2 and "--runs" in err
