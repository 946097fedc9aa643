"""Image recipes: build context and content hash (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.containers import CONTAINERS_DIR, Engine
from harness.errors import InfraError


def _engine(root: Path = CONTAINERS_DIR) -> Engine:
    return Engine(client=None, containers_dir=root, progress=lambda line: None)  # type: ignore[arg-type]


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
    assert engine.base_of("img") == "debian:trixie"


def test_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(InfraError, match="use one of: .*debian-trixie"):
        _engine().recipe_dir("no-such-image")
