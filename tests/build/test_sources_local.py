"""Local and prebuilt trees: content digests, git describe of a work tree, prebuilt records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sourcekit import GIT_ENV, T, git

from harness.build.sources import (
    content_digest,
    fetch_tree,
)
from harness.errors import SourceError

# ---------------------------------------------------------------------------------------------------
# local


def test_local_dir_digest(tmp_path: Path) -> None:
    src = tmp_path / "qemu"
    (src / "sub").mkdir(parents=True)
    (src / "configure").write_text("#!/bin/sh\n")
    (src / "sub" / "a.c").write_text("int a;\n")
    (src / "build").mkdir()
    (src / "build" / "build.ninja").write_text("# ninja\n")
    rec = fetch_tree("l", T(kind="local", path="qemu"), tmp_path / "cache", base_dir=tmp_path)
    assert rec.path == src.resolve() and rec.provenance["git"] is None and rec.provenance["files"] == 2
    assert rec.digest.startswith("sha256:") and len(rec.digest) == 71
    assert not (tmp_path / "cache" / "trees").exists(), "local trees are not copied"

    (src / "build" / "foo.o").write_text("ignored build output")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest == rec.digest
    (src / "sub" / "a.c").write_text("int a = 1;\n")
    changed = fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest
    assert changed != rec.digest
    (src / "configure").chmod(0o755)
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest != changed


def test_local_git_describe_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "qemu"
    src.mkdir()
    git(src, "init", "-q")
    (src / ".gitignore").write_text("/build/\n")
    (src / "configure").write_text("#!/bin/sh\n")
    git(src, "add", ".")
    git(src, "commit", "-qm", "one")
    git(src, "tag", "-a", "v2.0", "-m", "v2.0")
    head = git(src, "rev-parse", "HEAD")
    clean = fetch_tree("l", T(kind="local", path=str(src)), tmp_path)
    assert clean.provenance["git"] == {"head": head, "describe": "v2.0", "dirty": False}

    (src / "build").mkdir()
    (src / "build" / "x.o").write_text("ignored")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest == clean.digest

    (src / "configure").write_text("#!/bin/sh\necho changed\n")
    dirty = fetch_tree("l", T(kind="local", path=str(src)), tmp_path)
    assert dirty.provenance["git"]["dirty"] is True and dirty.provenance["git"]["describe"] == "v2.0-dirty"
    assert dirty.digest != clean.digest
    (src / "new.c").write_text("untracked, not ignored\n")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest != dirty.digest


def test_local_subdir_of_a_repo_is_plain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    git(tmp_path, "init", "-q")
    (tmp_path / "qemu").mkdir()
    (tmp_path / "qemu" / "configure").write_text("x")
    rec = fetch_tree("l", T(kind="local", path="qemu"), tmp_path / "c", base_dir=tmp_path)
    assert rec.provenance["git"] is None and rec.provenance["files"] == 1


def test_local_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as ei:
        fetch_tree("l", T(kind="local", path="nope"), tmp_path, base_dir=tmp_path)
    assert str(tmp_path / "nope") in ei.value.message and "tree l" in ei.value.message


def test_content_digest_symlink_and_format(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    (tmp_path / "l").symlink_to("f")
    digest, n = content_digest(tmp_path)
    h = hashlib.sha256(b"hello").hexdigest()
    lt = hashlib.sha256(b"f").hexdigest()
    manifest = f"f - {h} f\nl - {lt} l\n"
    assert n == 2 and digest == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# prebuilt


def test_prebuilt_record() -> None:
    from harness.engine.containers import ImageRef

    tree = T(kind="prebuilt", image="qemu-trixie", binary="/usr/bin/qemu-system-x86_64")
    rec = fetch_tree("distro", tree, Path("/nonexistent"))
    assert rec.path is None and rec.kind == "prebuilt"
    assert rec.provenance == {
        "image": "qemu-trixie",
        "image_tag": None,
        "image_id": None,
        "binary": "/usr/bin/qemu-system-x86_64",
    }
    img = ImageRef(name="qemu-trixie", tag="cpr-harness/qemu-trixie:abc", id="sha256:" + "1" * 64)
    pinned = fetch_tree("distro", tree, Path("/nonexistent"), image=img)
    assert pinned.digest == img.id and pinned.provenance["image_tag"] == img.tag
