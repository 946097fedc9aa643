"""Patch queues: quilt, spec and mbox forms on small trees and on real QEMU 10.2.2 source, with GNU patch
and git am."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

from harness.build.patches import EMPTY_DIGEST, apply_queue, detect_form, load_queue, split_mbox
from harness.errors import PatchError

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
    queue = load_queue(REPO / "patches" / "qemu-ds")
    assert [p.name for p in queue.patches] == ["0001-pc-bios-skip-unpack-edk2-blobs.patch"]


# --------------------------------------------------------------------------------------------------
# The three queue forms on real QEMU source (the unpacked 10.2.2 tree in the harness cache).


QEMU_FILES = ("VERSION", "migration/cpr.c", "include/qobject/qlit.h", "pc-bios/meson.build")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "QEMU upstream",
    "GIT_AUTHOR_EMAIL": "qemu-devel@nongnu.org",
    "GIT_COMMITTER_NAME": "QEMU upstream",
    "GIT_COMMITTER_EMAIL": "qemu-devel@nongnu.org",
}


@pytest.fixture
def qemu(tmp_path: Path, qemu_10_2_tree: Path) -> Path:
    """A few real QEMU 10.2.2 files, copied (the pristine tree is never written). The tree comes through
    the harness (the default matrix's debian-source fetch), so these tests never skip for want of it."""
    source = qemu_10_2_tree
    root = tmp_path / "qemu"
    for rel in QEMU_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, root / rel)
    return root


def _edit(root: Path, rel: str, old: str, new: str) -> str:
    """A -p1 diff of ``rel`` replacing ``old`` (which must be in the real file) by ``new``."""
    text = (root / rel).read_text()
    assert old in text, f"{rel} of QEMU 10.2.2 no longer contains {old!r}"
    return _diff(text, text.replace(old, new, 1), rel)


CPR_COMMENT = "/* cpr state container for all information to be saved. */"
BAIT = (
    "\n/* cpr-harness: an unused static function */\nstatic int cpr_harness_bait(void)\n{\n    return 0;\n}\n"
)


def test_quilt_queue_applies_to_real_qemu(tmp_path: Path, qemu: Path) -> None:
    shipped = REPO / "patches" / "qemu-ds" / "0001-pc-bios-skip-unpack-edk2-blobs.patch"
    folder = _queue(
        tmp_path,
        {
            "0001-skip-edk2.patch": shipped.read_text(),
            "0002-cpr-comment.patch": _edit(qemu, "migration/cpr.c", CPR_COMMENT, "/* CPR state. */"),
        },
        "# the Debian +ds fix, then ours\n0001-skip-edk2.patch\n0002-cpr-comment.patch -p1\n",
    )
    queue = load_queue(folder)
    assert queue.form == "quilt" and detect_form(folder) == "quilt"
    result = apply_queue(queue, qemu)
    assert [s.status for s in result.statuses] == ["applied", "applied"], result.statuses
    assert "if unpack_edk2_blobs and false" in (qemu / "pc-bios/meson.build").read_text()
    assert "/* CPR state. */" in (qemu / "migration/cpr.c").read_text()
    assert result.to_json()["method"] == "patch"


def test_conflicting_queue_names_the_patch_and_the_rejected_hunk(tmp_path: Path, qemu: Path) -> None:
    stale = (qemu / "migration/cpr.c").read_text().replace("CprState cpr_state;", "CprState cpr_state_v0;")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "cpr.c").write_text(stale)
    conflicting = _diff(stale, stale.replace("cpr_state_v0;", "cpr_state_v1;"), "migration/cpr.c")
    folder = _queue(
        tmp_path,
        {
            "0001-ok.patch": _edit(qemu, "include/qobject/qlit.h", "#define QLIT_H", "#define QLIT_H 1"),
            "0002-stale.patch": conflicting,
            "0003-later.patch": _edit(qemu, "VERSION", "10.2.2", "10.2.2-cpr"),
        },
        "0001-ok.patch\n0002-stale.patch\n0003-later.patch\n",
    )
    result = apply_queue(load_queue(folder), qemu)
    assert [s.status for s in result.statuses] == ["applied", "failed", "skipped"]
    failed = result.statuses[1]
    assert failed.name == "0002-stale.patch"
    assert "Hunk #1 FAILED" in failed.detail and "migration/cpr.c" in failed.detail
    assert failed.rejects == [{"file": "migration/cpr.c", "hunk": 1, "text": failed.rejects[0]["text"]}]
    assert "+CprState cpr_state_v1;" in failed.rejects[0]["text"]
    assert "rejected hunk #1 of migration/cpr.c" in failed.detail
    assert (qemu / "VERSION").read_text().strip() == "10.2.2"  # the skipped patch touched nothing


SPEC = """\
%global rcstr %{nil}
Name: qemu
Version: 10.2.2
Release: 1%{?dist}
Source0: https://download.qemu.org/%{name}-%{version}%{?rcstr}.tar.xz
Patch0002: %{name}-cpr-comment.patch
Patch0001: 0001-skip-edk2.patch
Patch0010: bait.patch

%prep
%autosetup -n qemu-%{version}%{?rcstr} -p1
%patch1 -p0
"""


def test_spec_queue_applies_in_number_order(tmp_path: Path, qemu: Path) -> None:
    shipped = REPO / "patches" / "qemu-ds" / "0001-pc-bios-skip-unpack-edk2-blobs.patch"
    folder = _queue(
        tmp_path,
        {
            "qemu.spec": SPEC,
            "0001-skip-edk2.patch": shipped.read_text(),
            "qemu-cpr-comment.patch": _edit(qemu, "migration/cpr.c", CPR_COMMENT, "/* CPR state. */"),
            "bait.patch": _edit(qemu, "include/qobject/qlit.h", "#endif", BAIT + "#endif"),
        },
        "",
    )
    (folder / "series").unlink()
    queue = load_queue(folder)
    assert queue.form == "spec"
    assert [p.name for p in queue.patches] == ["0001-skip-edk2.patch", "qemu-cpr-comment.patch", "bait.patch"]
    assert {p.strip for p in queue.patches} == {1}  # %autosetup -p1; the %patch1 -p0 line is irrelevant
    result = apply_queue(queue, qemu)
    assert result.ok, result.statuses
    assert "cpr_harness_bait" in (qemu / "include/qobject/qlit.h").read_text()


def test_spec_errors_name_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "qemu.spec").write_text("Name: qemu\nPatch1: missing.patch\n")
    with pytest.raises(PatchError, match=r"qemu.spec:2: Patch1 file 'missing.patch' not found"):
        load_queue(folder)
    (folder / "qemu.spec").write_text("Patch1: %{undefined_macro}.patch\n")
    with pytest.raises(PatchError, match=r"qemu.spec:1: macro %\{undefined_macro\} is not defined"):
        load_queue(folder)
    (folder / "qemu.spec").write_text("Patch1: a.patch\nPatch1: b.patch\n")
    with pytest.raises(PatchError, match=r"qemu.spec:2: Patch1 is defined twice"):
        load_queue(folder)
    (folder / "qemu.spec").write_text("Patch1: ../../etc/evil.patch\n")
    with pytest.raises(PatchError, match="not found"):
        load_queue(folder)


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


AUTHORS = [("Zhang Wei", "zhang.wei@example.org"), ("Ada Maintainer", "ada@example.com")]


def _format_patch_series(tmp_path: Path, qemu: Path) -> tuple[Path, Path]:
    """A git repo of real QEMU files (the 'tree') and a git format-patch series made on a clone."""
    _git(qemu, "init", "-q")
    _git(qemu, "add", "-A")
    _git(qemu, "commit", "-q", "-m", "QEMU 10.2.2")
    dev = tmp_path / "dev"
    _git(tmp_path, "clone", "-q", str(qemu), str(dev))
    edits = [
        ("migration/cpr.c", CPR_COMMENT, "/* CPR state. */", "migration/cpr: shorter comment"),
        ("include/qobject/qlit.h", "#endif", BAIT + "#endif", "qlit: add a bait function"),
    ]
    for (name, email), (rel, old, new, subject) in zip(AUTHORS, edits, strict=True):
        path = dev / rel
        path.write_text(path.read_text().replace(old, new, 1))
        author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
        _git(dev, "commit", "-q", "-am", subject, env=author)
    series = tmp_path / "series-mbox"
    _git(dev, "format-patch", "-q", "-2", "-o", str(series))
    return qemu, series


def test_mbox_series_applied_with_git_am_keeps_authorship(tmp_path: Path, qemu: Path) -> None:
    tree, series = _format_patch_series(tmp_path, qemu)
    queue = load_queue(series)
    assert queue.form == "mbox" and len(queue.patches) == 2
    assert queue.patches[0].author == "Zhang Wei <zhang.wei@example.org>"
    result = apply_queue(queue, tree)
    assert result.ok, result.statuses
    assert result.method == "git am"
    log = _git(tree, "log", "-3", "--format=%an <%ae>|%cn|%s").splitlines()
    assert log == [
        "Ada Maintainer <ada@example.com>|cpr-harness|qlit: add a bait function",
        "Zhang Wei <zhang.wei@example.org>|cpr-harness|migration/cpr: shorter comment",
        "QEMU upstream <qemu-devel@nongnu.org>|QEMU upstream|QEMU 10.2.2",
    ]
    assert all(s.detail.startswith("commit ") for s in result.statuses)


def test_one_mbox_file_on_a_plain_tree_uses_patch(tmp_path: Path, qemu: Path) -> None:
    tree, series = _format_patch_series(tmp_path, qemu)
    shutil.rmtree(tree / ".git")
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "pull-569.mbox").write_bytes(b"".join(p.read_bytes() for p in sorted(series.iterdir())))
    queue = load_queue(folder)
    assert [p.name for p in queue.patches] == ["pull-569.mbox#1", "pull-569.mbox#2"]
    result = apply_queue(queue, tree)
    assert result.ok and result.method == "patch", result.statuses
    assert "cpr_harness_bait" in (tree / "include/qobject/qlit.h").read_text()


def test_git_am_conflict_is_reported_and_tree_left_clean(tmp_path: Path, qemu: Path) -> None:
    tree, series = _format_patch_series(tmp_path, qemu)
    path = tree / "migration/cpr.c"
    path.write_text(path.read_text().replace(CPR_COMMENT, "/* moved on */"))
    _git(tree, "commit", "-q", "-am", "upstream moved")
    result = apply_queue(load_queue(series), tree)
    assert [s.status for s in result.statuses] == ["failed", "skipped"]
    assert result.statuses[0].detail.startswith("git am:")
    assert result.statuses[0].rejects[0]["file"] == "migration/cpr.c"
    assert not (tree / ".git" / "rebase-apply").exists()


def test_split_mbox_and_paths_outside_the_tree_in_every_form(tmp_path: Path) -> None:
    assert split_mbox(b"") == []
    assert len(split_mbox(b"--- a/x\n+++ b/x\n")) == 1
    evil = "From 0123456789012345678901234567890123456789 Mon Sep 17 00:00:00 2001\nFrom: X <x@y>\n"
    evil += "Subject: [PATCH] evil\n\n---\ndiff --git a/../x b/../x\n"
    evil += "--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n"
    mbox = tmp_path / "mbox"
    mbox.mkdir()
    (mbox / "0001-evil.patch").write_text(evil)
    with pytest.raises(PatchError, match="outside the tree"):
        load_queue(mbox)
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "x.spec").write_text("Patch1: evil.patch\n")
    (spec / "evil.patch").write_text("--- a/../../x\n+++ b/../../x\n@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(PatchError, match="outside the tree"):
        load_queue(spec)
    rename = tmp_path / "rename"
    rename.mkdir()
    (rename / "r.patch").write_text("diff --git a/x b/y\nrename from x\nrename to ../y\n")
    with pytest.raises(PatchError, match="outside the tree"):
        load_queue(rename)


def test_unknown_folder_contents_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PatchError, match="no series file, no .spec"):
        load_queue(tmp_path)
    with pytest.raises(PatchError, match="unknown patch queue form"):
        load_queue(tmp_path, form="rpm")


def test_digest_differs_between_forms(tmp_path: Path) -> None:
    body = _diff(ORIG, ORIG.replace("one", "1"))
    quilt = load_queue(_queue(tmp_path / "a", {"x.patch": body}, "x.patch\n"))
    mbox = tmp_path / "b"
    mbox.mkdir()
    (mbox / "x.patch").write_text(body)
    assert load_queue(mbox).digest not in (quilt.digest, EMPTY_DIGEST)
