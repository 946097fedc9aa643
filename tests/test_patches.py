"""Patch queues (quilt form) on small real trees, with GNU patch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import PatchError
from harness.patches import EMPTY_DIGEST, apply_queue, load_queue

ORIG = "line one\nline two\nline three\n"


def _diff(old: str, new: str, name: str = "hello.txt") -> str:
    import difflib

    body = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{name}", f"b/{name}")
    return "".join(body)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "hello.txt").write_text(ORIG)
    return root


def _queue(tmp_path: Path, patches: dict[str, str], series: str) -> Path:
    folder = tmp_path / "queue"
    folder.mkdir(parents=True)
    for name, text in patches.items():
        (folder / name).write_text(text)
    (folder / "series").write_text(series)
    return folder


def test_series_applies_in_order_and_honours_comments(tmp_path: Path, tree: Path) -> None:
    step1 = ORIG.replace("two", "2")
    step2 = step1.replace("three", "3")
    folder = _queue(
        tmp_path,
        {"a.patch": _diff(ORIG, step1), "b.patch": _diff(step1, step2), "unused.patch": "garbage"},
        "# header comment\n\na.patch\nb.patch -p1  # trailing comment\n#unused.patch\n",
    )
    queue = load_queue(folder)
    assert [p.name for p in queue.patches] == ["a.patch", "b.patch"]
    result = apply_queue(queue, tree)
    assert result.ok, result.statuses
    assert (tree / "hello.txt").read_text() == "line one\nline 2\nline 3\n"


def test_conflict_names_patch_and_hunk_and_skips_the_rest(tmp_path: Path, tree: Path) -> None:
    other = "something else\nentirely\n"
    folder = _queue(
        tmp_path,
        {
            "good.patch": _diff(ORIG, ORIG.replace("one", "1")),
            "bad.patch": _diff(other, other.replace("else", "new")),
            "late.patch": _diff(ORIG, ORIG),
        },
        "good.patch\nbad.patch\nlate.patch\n",
    )
    result = apply_queue(load_queue(folder), tree)
    assert [s.status for s in result.statuses] == ["applied", "failed", "skipped"]
    assert "Hunk #1 FAILED" in result.statuses[1].detail
    assert "hello.txt" in result.statuses[1].detail
    assert not result.ok


@pytest.mark.parametrize("bad_path", ["../outside.txt", "/etc/passwd"])
def test_patch_escaping_the_tree_is_refused(tmp_path: Path, bad_path: str) -> None:
    text = f"--- a/{bad_path}\n+++ b/{bad_path}\n@@ -1 +1 @@\n-x\n+y\n"
    if bad_path.startswith("/"):
        text = f"--- {bad_path}\n+++ {bad_path}\n@@ -1 +1 @@\n-x\n+y\n"
    folder = _queue(tmp_path, {"evil.patch": text}, "evil.patch\n")
    with pytest.raises(PatchError, match="outside the tree"):
        load_queue(folder)


def test_digest_changes_with_content_and_order(tmp_path: Path) -> None:
    one, two = _diff(ORIG, ORIG.replace("one", "1")), _diff(ORIG, ORIG.replace("two", "2"))
    a = load_queue(_queue(tmp_path / "a", {"x.patch": one, "y.patch": two}, "x.patch\ny.patch\n"))
    b = load_queue(_queue(tmp_path / "b", {"x.patch": one, "y.patch": two}, "y.patch\nx.patch\n"))
    c = load_queue(_queue(tmp_path / "c", {"x.patch": one, "y.patch": two + " "}, "x.patch\ny.patch\n"))
    empty = load_queue(_queue(tmp_path / "d", {}, "# nothing yet\n"))
    assert len({a.digest, b.digest, c.digest}) == 3
    assert empty.digest == EMPTY_DIGEST


def test_missing_series_entry_names_line(tmp_path: Path) -> None:
    folder = _queue(tmp_path, {}, "\nmissing.patch\n")
    with pytest.raises(PatchError, match=r"series:2: patch 'missing.patch' not found"):
        load_queue(folder)


def test_shipped_qemu_ds_queue_is_well_formed() -> None:
    queue = load_queue(Path(__file__).resolve().parent.parent / "patches" / "qemu-ds")
    assert [p.name for p in queue.patches] == ["0001-pc-bios-skip-unpack-edk2-blobs.patch"]
