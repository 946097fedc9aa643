"""Tarballs whose links would reach outside the tree are refused before anything is written, whatever
the running Python's ``tarfile`` data filter knows (chained symlinks, hardlinks: CVE-2025-4138 & co)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.build.download import download_verified, extract_tarball, sha256_file
from harness.errors import SourceError


def _tar(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """Members as (kind, name, link target or content): kind is dir, file, sym or hard."""
    with tarfile.open(path, "w") as tf:
        for kind, name, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif kind == "file":
                info.size = len(extra.encode())
                tf.addfile(info, io.BytesIO(extra.encode()))
            else:
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = extra
                tf.addfile(info)
    return path


# The chained-symlink escape (CVE-2025-4517, in spirit): read alone, "a/t" stays inside (four levels down,
# three up), but "s" is "." itself, so through the other links it climbs out of the tree.
CHAIN = [("dir", "top", ""), ("dir", "top/a", ""), ("sym", "top/a/s", "."),
         ("sym", "top/a/t", "s/s/s/s/../../.."), ("sym", "top/a/l", "t/../../..")]  # fmt: skip

UNSAFE = {
    "chained symlinks": (CHAIN, "top/a/t", "pointing outside the tree"),
    "hardlink to a host file": ([("dir", "top", ""), ("hard", "top/passwd", "/etc/passwd")], "top/passwd",
                                "hardlink"),
    "hardlink through a symlink": ([("dir", "top", ""), ("sym", "top/etc", "../../../../etc"),
                                    ("hard", "top/passwd", "top/etc/passwd")], "top/passwd", "hardlink"),
    "hardlink out by dots": ([("dir", "top", ""), ("hard", "top/x", "top/../../x")], "top/x", "hardlink"),
    "file behind a symlink": ([("dir", "top", ""), ("sym", "top/d", "sub"), ("dir", "top/sub", ""),
                               ("file", "top/d/evil", "x")], "top/d/evil", "behind a symlink"),
    "file replacing a symlink": ([("dir", "top", ""), ("file", "top/f", "ok"), ("sym", "top/f", "g")],
                                 "top/f", "replaces"),
    "symlink replacing a folder": ([("dir", "top", ""), ("file", "top/d/f", "x"), ("sym", "top/d", ".")],
                                   "top/d", "replaces"),
    "out of the stripped top folder": ([("dir", "qemu", ""), ("file", "qemu/configure", "x"),
                                        ("sym", "qemu/other-tree", "../neighbour")], "qemu/other-tree",
                                       "outside the tree"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_link_tricks_are_refused_before_writing(tmp_path: Path, case: str) -> None:
    members, bad, why = UNSAFE[case]
    archive = _tar(tmp_path / "evil.tar", members)
    with pytest.raises(SourceError) as info:
        extract_tarball(archive, tmp_path / "trees" / "t")
    assert why in info.value.message and repr(bad) in info.value.message
    assert not (tmp_path / "trees" / "t").exists() and list((tmp_path / "trees").iterdir()) == []


def test_links_that_stay_inside_are_kept(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar",
        [("dir", "qemu", ""), ("dir", "qemu/roms", ""), ("file", "qemu/roms/a.txt", "A"),
         ("sym", "qemu/link", "roms/a.txt"), ("sym", "qemu/roms/up", "../roms"),
         ("hard", "qemu/b.txt", "qemu/roms/a.txt")],
    )  # fmt: skip
    tree = extract_tarball(archive, tmp_path / "trees" / "t")
    assert (tree / "link").read_text() == "A" and (tree / "b.txt").read_text() == "A"
    assert (tree / "roms" / "up").is_symlink()


def test_file_urls_are_fetched_and_verified(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "local.tar", [("dir", "qemu", ""), ("file", "qemu/configure", "#!/bin/sh\n")])
    sha = sha256_file(archive)
    got = download_verified(f"file://{archive}", sha, tmp_path / "dl", progress=lambda line: None)
    assert got.read_bytes() == archive.read_bytes() and got.parent == tmp_path / "dl"
    with pytest.raises(SourceError, match="sha256 mismatch"):
        download_verified(f"file://{archive}", "0" * 64, tmp_path / "dl2", progress=lambda line: None)
    with pytest.raises(SourceError, match="No such file"):
        download_verified(f"file://{tmp_path}/missing.tar", sha, tmp_path / "dl3", progress=lambda line: None)
