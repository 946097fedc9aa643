"""Which borrowed folders a tree declares and lacks: .gitmodules (6.x-8.0) and meson wraps (8.1 on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build.subprojects import missing_required, missing_subprojects, present, subtrees

GITMODULES = """\
[submodule "roms/seabios"]
\tpath = roms/seabios
\turl = https://example.invalid/seabios.git
[submodule "ui/keycodemapdb"]
\tpath = ui/keycodemapdb
\turl = https://example.invalid/keycodemapdb.git
[submodule "tests/fp/berkeley-softfloat-3"]
\tpath = tests/fp/berkeley-softfloat-3
\turl = https://example.invalid/berkeley-softfloat-3.git
[submodule "evil"]
\tpath = ../outside
\turl = x
"""


def old_tree(root: Path, *, with_folders: bool) -> Path:
    """A 7.2-shaped export: .gitmodules, folders present or not."""
    (root / "ui").mkdir(parents=True)
    (root / "tests" / "fp").mkdir(parents=True)
    (root / ".gitmodules").write_text(GITMODULES)
    (root / "VERSION").write_text("7.2.0\n")
    if with_folders:
        for rel in ("ui/keycodemapdb", "tests/fp/berkeley-softfloat-3"):
            (root / rel).mkdir(parents=True)
            (root / rel / "README").write_text(f"{rel}\n")
    return root


def new_tree(
    root: Path, *, with_folders: bool, revision: str = "f5772a62ec52591ff6870b7e8ef32482371f22c6"
) -> Path:
    """A 10.x-shaped tree: wraps under subprojects/ with pinned revisions."""
    sub = root / "subprojects"
    sub.mkdir(parents=True)
    (root / "VERSION").write_text("10.2.2\n")
    (sub / "keycodemapdb.wrap").write_text(
        f"[wrap-git]\nurl = https://example.invalid/k.git\nrevision = {revision}\n"
    )
    (sub / "dtc.wrap").write_text("[wrap-git]\nurl = https://example.invalid/dtc.git\nrevision = v1\n")
    (sub / "berkeley-testfloat-3.wrap").write_text(
        "[wrap-git]\nurl = https://example.invalid/t.git\nrevision = 0123\n"
        "patch_directory = berkeley-testfloat-3\n"
    )
    (sub / "redirect.wrap").write_text("[wrap-redirect]\nfilename = x/y.wrap\n")
    if with_folders:
        for name in ("keycodemapdb", "berkeley-testfloat-3"):
            (sub / name).mkdir()
            (sub / name / "meson.build").write_text(f"project('{name}')\n")
    return root


def test_gitmodules_era_declares_and_lacks(tmp_path: Path) -> None:
    root = old_tree(tmp_path, with_folders=False)
    paths = [s.path for s in subtrees(root)]
    assert paths == ["roms/seabios", "tests/fp/berkeley-softfloat-3", "ui/keycodemapdb"]  # ../ refused
    lacking = missing_required(root)
    assert [s.path for s in lacking] == ["tests/fp/berkeley-softfloat-3", "ui/keycodemapdb"]  # roms optional
    assert lacking[1].describe() == "ui/keycodemapdb (.gitmodules)" and lacking[1].revision is None


def test_wrap_era_names_the_pinned_revision(tmp_path: Path) -> None:
    root = new_tree(tmp_path, with_folders=False)
    lacking = missing_required(root)
    assert [s.path for s in lacking] == ["subprojects/berkeley-testfloat-3", "subprojects/keycodemapdb"]
    assert (
        lacking[1].describe()
        == "subprojects/keycodemapdb (subprojects/keycodemapdb.wrap, revision f5772a62ec52)"
    )
    assert {m["name"] for m in missing_subprojects(root)} == {"keycodemapdb", "dtc", "berkeley-testfloat-3"}


@pytest.mark.parametrize("shape", [old_tree, new_tree])
def test_complete_trees_lack_nothing(tmp_path: Path, shape) -> None:
    assert missing_required(shape(tmp_path, with_folders=True)) == []


def test_an_empty_folder_or_a_link_counts_as_absent(tmp_path: Path) -> None:
    root = old_tree(tmp_path, with_folders=True)
    assert present(root, "ui/keycodemapdb")
    for f in (root / "ui" / "keycodemapdb").iterdir():
        f.unlink()
    assert not present(root, "ui/keycodemapdb")  # git archive leaves the folder, empty
    (root / "ui" / "keycodemapdb").rmdir()
    (root / "ui" / "keycodemapdb").symlink_to(tmp_path.parent)
    assert not present(root, "ui/keycodemapdb")  # never followed out of the tree
