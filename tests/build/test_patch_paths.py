"""Which files a patch touches (harness.build.patchpaths): escapes through quoted names or symlinked
folders are refused; legal patches that merely look odd (a removed "-- " line, context diffs) apply."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.build.patches import apply_queue, load_queue
from harness.build.patchpaths import check_text, unquote
from harness.errors import PatchError

SQL = "-- schema\nCREATE TABLE t (x int);\n-- end\n"


def _queue(tmp_path: Path, text: str, name: str = "0001.patch", series: str | None = None) -> Path:
    folder = tmp_path / "queue"
    folder.mkdir()
    (folder / name).write_text(text)
    (folder / "series").write_text(series if series is not None else f"{name}\n")
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "db.sql").write_text(SQL)
    return root


def test_quoted_names_are_decoded_before_checking() -> None:
    assert unquote('"a/\\056\\056/etc/passwd"') == "a/../etc/passwd"
    assert unquote('"b/caf\\303\\251.c"') == "b/café.c"
    for header in ('--- "a/\\056\\056/\\056\\056/etc/x"\n+++ "b/\\056\\056/\\056\\056/etc/x"\n',
                   'diff --git "a/../x" "b/../x"\n'):  # fmt: skip
        with pytest.raises(PatchError, match="outside the tree"):
            check_text(header + "@@ -1 +1 @@\n-a\n+b\n", 1, "q.patch")


def test_a_quoted_escape_is_refused_by_the_queue_loader(tmp_path: Path) -> None:
    text = '--- "a/\\056\\056/outside.txt"\n+++ "b/\\056\\056/outside.txt"\n@@ -0,0 +1 @@\n+pwned\n'
    with pytest.raises(PatchError) as info:
        load_queue(_queue(tmp_path, text))
    assert "0001.patch:1: refers to 'a/../outside.txt', outside the tree" in info.value.message


def test_a_removed_dash_dash_line_is_content_not_a_header(tmp_path: Path, tree: Path) -> None:
    """Removing the SQL comment "-- end" gives the hunk line "--- end": not a file name."""
    hunk = " -- schema\n CREATE TABLE t (x int);\n--- end\n+-- fin\n"
    text = "--- a/db.sql\n+++ b/db.sql\n@@ -1,3 +1,3 @@\n" + hunk
    result = apply_queue(load_queue(_queue(tmp_path, text)), tree)
    assert result.ok, result.statuses
    assert (tree / "db.sql").read_text() == SQL.replace("-- end", "-- fin")


def test_a_context_diff_is_accepted_and_applies(tmp_path: Path, tree: Path) -> None:
    new = tmp_path / "new.sql"
    new.write_text(SQL.replace("x int", "x bigint"))
    context = subprocess.run(["diff", "-c", str(tree / "db.sql"), str(new)], capture_output=True, text=True)
    text = context.stdout.replace(str(tree / "db.sql"), "a/db.sql").replace(str(new), "b/db.sql")
    assert "--- 1,3 ----" in text and "***************" in text  # a real context diff
    result = apply_queue(load_queue(_queue(tmp_path, text)), tree)
    assert result.ok, result.statuses
    assert "x bigint" in (tree / "db.sql").read_text()


def test_a_symlinked_folder_of_the_tree_cannot_lead_out(tmp_path: Path, tree: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("host file\n")
    (tree / "vendor").symlink_to(outside)  # a folder of the tree that is a link out of it
    text = "--- a/vendor/victim.txt\n+++ b/vendor/victim.txt\n@@ -1 +1 @@\n-host file\n+pwned\n"
    result = apply_queue(load_queue(_queue(tmp_path, text)), tree)
    (status,) = result.statuses
    assert status.status == "failed" and "leads through a symlink of the tree" in status.detail
    assert (outside / "victim.txt").read_text() == "host file\n"


def test_a_link_that_stays_inside_the_tree_is_fine(tmp_path: Path, tree: Path) -> None:
    (tree / "sql").symlink_to(".")
    text = "--- a/sql/db.sql\n+++ b/sql/db.sql\n@@ -1 +1 @@\n--- schema\n+-- the schema\n"
    result = apply_queue(load_queue(_queue(tmp_path, text)), tree)
    assert result.ok, result.statuses


def test_quilt_series_cannot_name_a_file_outside_the_queue(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="not found"):
        load_queue(_queue(tmp_path, "", series="/etc/hostname\n"))
