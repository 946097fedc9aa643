"""Build artifacts come out of a folder the tree's build system wrote: regular files only, never a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.build.buildbox import collect_artifacts


@pytest.fixture
def obj(tmp_path: Path) -> Path:
    obj = tmp_path / "obj"
    (obj / "pc-bios").mkdir(parents=True)
    (obj / "qemu-system-x86_64").write_bytes(b"\x7fELF binary")
    os.chmod(obj / "qemu-system-x86_64", 0o755)
    (obj / "pc-bios" / "bios.bin").write_bytes(b"firmware")
    return obj


def test_links_planted_by_the_build_are_refused(tmp_path: Path, obj: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host secret\n")
    os.chmod(secret, 0o755)  # even an executable target: a link is never an artifact
    (obj / "qemu-system-evil").symlink_to(secret)
    (obj / "pc-bios" / "evil.bin").symlink_to("/etc/passwd")
    names, refused = collect_artifacts(obj, tmp_path / "artifacts")
    assert names == ["qemu-system-x86_64"]
    assert refused == ["qemu-system-evil: a symlink", "pc-bios/evil.bin: a symlink"]
    assert sorted(p.name for p in (tmp_path / "artifacts" / "share").iterdir()) == ["bios.bin"]
    assert sorted(p.name for p in (tmp_path / "artifacts" / "bin").iterdir()) == ["qemu-system-x86_64"]
    assert os.access(tmp_path / "artifacts" / "bin" / "qemu-system-x86_64", os.X_OK)


def test_a_symlinked_firmware_folder_is_refused(tmp_path: Path, obj: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.bin").write_text("host file\n")
    for p in (obj / "pc-bios").iterdir():
        p.unlink()
    (obj / "pc-bios").rmdir()
    (obj / "pc-bios").symlink_to(elsewhere)
    names, refused = collect_artifacts(obj, tmp_path / "artifacts")
    assert names == ["qemu-system-x86_64"] and refused == ["pc-bios: a symlink or not a folder"]
    assert list((tmp_path / "artifacts" / "share").iterdir()) == []
