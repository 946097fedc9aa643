"""Reading what a container or a CI shard wrote (harness.store.untrusted): data, never a path to follow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.store.untrusted import copy_tree_untrusted, copy_untrusted, open_folder, read_untrusted


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file a container must never get the host to read or write (stands in for /etc/passwd)."""
    path = tmp_path / "host-secret"
    path.write_text("root:x:0:0:host secret\n")
    return path


def test_plain_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "serial.log").write_bytes(b"boot\n1\n2\n")
    assert read_untrusted(tmp_path, "serial.log", 100) == b"boot\n1\n2\n"


@pytest.mark.parametrize("target", ["/etc/passwd", "host-secret"])
def test_symlinked_log_is_refused(tmp_path: Path, secret: Path, target: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "serial.log").symlink_to(target if target.startswith("/") else secret)
    with pytest.raises(ValueError, match="symlink"):
        read_untrusted(work, "serial.log", 1 << 20)
    with pytest.raises(ValueError, match="symlink"):
        copy_untrusted(work, "serial.log", tmp_path / "out" / "serial.log", 1 << 20)
    assert not (tmp_path / "out" / "serial.log").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../host-secret", "..", ".", "a/b", "", "x\0y"])
def test_names_that_are_not_plain_are_refused(tmp_path: Path, secret: Path, name: str) -> None:
    work = tmp_path / "work"
    (work / "a").mkdir(parents=True)
    (work / "a" / "b").write_text("inside, but not a plain name\n")
    with pytest.raises(ValueError, match="refused file name"):
        read_untrusted(work, name, 1 << 20)


def test_fifo_folder_and_oversized_file_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # would block a reader that opened it without O_NONBLOCK
    (tmp_path / "folder").mkdir()
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(ValueError, match="not a regular file"):
        read_untrusted(tmp_path, "fifo", 100)
    with pytest.raises(ValueError, match="not a regular file"):
        read_untrusted(tmp_path, "folder", 100)
    with pytest.raises(ValueError, match="101 bytes, more than 100"):
        read_untrusted(tmp_path, "big", 100)
    with pytest.raises(FileNotFoundError):
        read_untrusted(tmp_path, "absent", 100)


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ValueError, match="symlink or not a folder"), open_folder(tmp_path / "link"):
        pass
    with pytest.raises(ValueError):
        read_untrusted(tmp_path / "link", "f", 10)


def test_copy_replaces_a_link_planted_at_the_destination(tmp_path: Path, secret: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "build.log").write_text("the real log\n")
    (dest / "build.log").symlink_to(secret)  # a crafted run folder: copying must not write through it
    copy_untrusted(src, "build.log", dest / "build.log", 1 << 20, 0o644)
    assert secret.read_text() == "root:x:0:0:host secret\n"
    assert not (dest / "build.log").is_symlink() and (dest / "build.log").read_text() == "the real log\n"
    assert oct((dest / "build.log").stat().st_mode & 0o7777) == "0o644"


def test_copy_drops_set_id_bits(tmp_path: Path) -> None:
    (tmp_path / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(tmp_path / "tool", 0o6755)
    copy_untrusted(tmp_path, "tool", tmp_path / "out" / "tool", 100)
    assert (tmp_path / "out" / "tool").stat().st_mode & 0o7777 == 0o755


def test_tree_copy_leaves_links_out_and_names_them(tmp_path: Path, secret: Path) -> None:
    shard = tmp_path / "shard"
    (shard / "cell").mkdir(parents=True)
    (shard / "cell" / "result.json").write_text("{}")
    (shard / "cell" / "serial.log").symlink_to(secret)
    (shard / "cell" / "etc").symlink_to("/etc")
    (shard / "cell" / "sub").mkdir()
    (shard / "cell" / "sub" / "x.log").write_text("x")
    refused = copy_tree_untrusted(shard, tmp_path / "merged", 1 << 20)
    assert sorted(refused) == ["cell/etc: a symlink", "cell/serial.log: a symlink"]
    merged = tmp_path / "merged" / "cell"
    assert sorted(p.name for p in merged.iterdir()) == ["result.json", "sub"]
    assert (merged / "sub" / "x.log").read_text() == "x"
