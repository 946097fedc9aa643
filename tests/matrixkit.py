"""A small matrix and its repository folder, for the matrix tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.config.matrix import load_matrix
from harness.errors import ConfigError

SHA = "ab" * 32

BASE = f"""\
description: fixture
trees:
  a:
    kind: tarball
    image: img
    url: https://example.org/a.tar.xz
    sha256: {SHA}
  b:
    kind: git
    image: img
    url: https://example.org/b.git
    ref: main
    profiles: [p1]
  bin:
    kind: prebuilt
    image: other
    binary: /usr/bin/qemu-system-x86_64
profiles:
  p1:
    configure: [--target-list=x86_64-softmmu]
  p2: {{}}
scenarios: [boot, normal]
accels: [tcg, kvm]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for image in ("img", "other"):
        (tmp_path / "containers" / image).mkdir(parents=True)
        (tmp_path / "containers" / image / "Dockerfile").write_text("# cpr-harness-base: debian:trixie\n")
    (tmp_path / "patches" / "series-a").mkdir(parents=True)
    (tmp_path / "matrices").mkdir()
    return tmp_path


def write(repo: Path, text: str, name: str = "m.yaml") -> Path:
    path = repo / "matrices" / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(repo: Path, text: str) -> tuple[ConfigError, str]:
    path = write(repo, text)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    return info.value, path.read_text()


def line(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, s in enumerate(text.splitlines(), 1) if needle in s)


def ids(cells: list) -> list[str]:
    return [c.id for c in cells]
