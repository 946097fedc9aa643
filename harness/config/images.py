"""The image recipes of the repository (``containers/<name>/Dockerfile``), read as configuration.

The first line of each recipe names its base; this module is the one parser of that line::

    # cpr-harness-base: debian:trixie          a root filesystem: pulled, or bootstrapped
    # cpr-harness-base: image:debian-trixie    another image of this repository
    # cpr-harness-base: registry:openeuler/openeuler:24.03-lts   pulled only (no bootstrap)

From it follow an image's lineage (the repository images it derives from), the image an upgrade pair
runs in, and the distribution family that decides package names in triage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BASE_LINE = re.compile(r"^#\s*cpr-harness-base:\s*(debian|image|registry):(\S+)\s*$")
BASE_FORMS = (
    "'# cpr-harness-base: debian:<suite>', '# cpr-harness-base: image:<name>' or "
    "'# cpr-harness-base: registry:<repository>:<tag>'"
)


@dataclass(frozen=True)
class Base:
    kind: str  # "debian" | "image" | "registry"
    value: str  # suite, image name, or repository:tag


def recipe(containers_dir: Path, name: str) -> Path:
    return containers_dir / name / "Dockerfile"


def image_names(containers_dir: Path) -> list[str]:
    """Every image with a recipe, sorted."""
    return sorted(p.parent.name for p in containers_dir.glob("*/Dockerfile"))


def base_of(containers_dir: Path, name: str) -> Base | None:
    """The base named on the recipe's first line; None when the recipe is missing or has no such line."""
    path = recipe(containers_dir, name)
    if not path.is_file():
        return None
    first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    match = BASE_LINE.match(first)
    return Base(match.group(1), match.group(2)) if match else None


def lineage(containers_dir: Path, name: str) -> list[str]:
    """``name`` and the repository images it derives from, nearest first (at most 16 deep)."""
    chain = [name]
    while len(chain) < 16:
        base = base_of(containers_dir, chain[-1])
        if base is None or base.kind != "image" or base.value in chain:
            break
        chain.append(base.value)
    return chain


def run_image(containers_dir: Path, source_image: str, target_image: str) -> str | None:
    """The image an upgrade pair runs in: the one of the two that derives from the other, if any.

    A binary built in image B runs in any image derived from B (same libraries, plus more)."""
    if target_image in lineage(containers_dir, source_image):
        return source_image
    if source_image in lineage(containers_dir, target_image):
        return target_image
    return None


def distro(containers_dir: Path, name: str) -> str:
    """The distribution family of an image (``debian`` or ``openeuler``), from its root base."""
    root = base_of(containers_dir, lineage(containers_dir, name)[-1])
    if root is not None and root.kind == "registry" and "openeuler" in root.value.lower():
        return "openeuler"
    return "debian"
