"""Image recipes: build context and content hash (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import images as recipes
from harness.config.repo import CONTAINERS_DIR
from harness.engine.images import Images
from harness.errors import InfraError


def _engine(root: Path = CONTAINERS_DIR) -> Images:
    """The image recipes alone: these tests need no engine (the client is never used)."""
    return Images(client=None, containers_dir=root, progress=lambda line: None, lock_dir=Path("/nonexistent"))  # type: ignore[arg-type]


def test_shared_files_are_part_of_every_context() -> None:
    names = [arcname for arcname, _ in _engine().context_files("debian-trixie")]
    assert "Dockerfile" in names and "common/apt-sources.sh" in names


def test_recipe_hash_follows_files_and_base(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "common").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text("# cpr-harness-base: debian:trixie\nFROM x\n")
    (tmp_path / "common" / "helper.sh").write_text("echo one\n")
    engine = _engine(tmp_path)
    first = engine.recipe_hash("img", "sha256:base")
    assert engine.recipe_hash("img", "sha256:base") == first
    assert engine.recipe_hash("img", "sha256:other-base") != first
    (tmp_path / "common" / "helper.sh").write_text("echo two\n")
    assert engine.recipe_hash("img", "sha256:base") != first
    assert engine.base_of("img") == recipes.Base("debian", "trixie")


def test_one_parser_of_the_base_line(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text("# cpr-harness-base: registry:openeuler/openeuler:24.03-lts\n")
    (tmp_path / "b" / "Dockerfile").write_text("# cpr-harness-base: image:a\nFROM x\n")
    (tmp_path / "bad" / "Dockerfile").write_text("FROM debian\n")
    assert recipes.lineage(tmp_path, "b") == ["b", "a"]
    assert recipes.distro(tmp_path, "b") == "openeuler" and recipes.distro(tmp_path, "bad") == "debian"
    assert recipes.run_image(tmp_path, "a", "b") == "b" and recipes.run_image(tmp_path, "a", "bad") is None
    assert recipes.base_of(tmp_path, "bad") is None and recipes.image_names(tmp_path) == ["a", "b", "bad"]
    with pytest.raises(InfraError, match="first line must be"):
        _engine(tmp_path).base_of("bad")


def test_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(InfraError, match="use one of: .*debian-trixie"):
        _engine().recipe_dir("no-such-image")


def test_every_image_gives_the_driver_qemu_qmp() -> None:
    """Scenarios run in the image a tree was built in: every recipe (itself or a base it derives from)
    installs qemu.qmp, from the distribution or as a wheel whose sha256 is checked."""
    import hashlib
    import re

    from harness.config import images as recipes

    containers = CONTAINERS_DIR
    for name in recipes.image_names(containers):
        chain = recipes.lineage(containers, name)
        texts = [(containers / n / "Dockerfile").read_text() for n in chain]
        assert any("python3-qemu-qmp" in t or "import qemu.qmp" in t for t in texts), name
        for n, text in zip(chain, texts, strict=True):
            for pinned, wheel in re.findall(r'echo "([0-9a-f]{64})\s+/tmp/wheels/(\S+\.whl)"', text):
                real = hashlib.sha256((containers / n / wheel).read_bytes()).hexdigest()
                assert real == pinned, f"containers/{n}/{wheel}: sha256 {real}, pinned {pinned}"
