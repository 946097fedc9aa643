"""The matrix file's schema: what each key may hold (pydantic models, validated with positions).

The schema of every key, with examples, is in docs/matrix.md; cross-checks between keys (names that
must exist, images, patch folders, rules, upgrades) are in :mod:`harness.config.matrix`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.live.machine import MINIMAL
from harness.live.vocab import MODES, Accel, Mode

TreeKind = Literal["tarball", "git", "debian-source", "local", "prebuilt"]
PREBUILT = "prebuilt"  # profile name of prebuilt trees' build cells
NAME_RE = re.compile(r"[A-Za-z0-9._+-]+")
_COMMON = {"kind", "image", "description"}
# kind -> (required fields, other allowed fields); anything else set on the tree is an error
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tarball": (("url", "sha256"), ("patches", "profiles")),
    "git": (("url", "ref"), ("submodules", "patches", "profiles")),
    "debian-source": (("version",), ("package", "patches", "profiles")),
    "local": (("path",), ("patches", "profiles")),
    "prebuilt": (("binary",), ()),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tree(_Model):
    kind: TreeKind
    image: str
    description: str = ""
    url: str | None = None
    sha256: str | None = None
    ref: str | None = None
    submodules: bool = True
    package: str | None = None
    version: str | None = None
    path: str | None = None
    binary: str | None = None
    patches: str | None = None
    profiles: list[str] | None = None


class Profile(_Model):
    description: str = ""
    configure: list[str] = []
    targets: list[str] = []


class Rule(_Model):
    tree: str | None = None
    profile: str | None = None
    scenario: str | None = None
    accel: str | None = None
    machine: str | None = None  # optional: a rule without it matches every machine profile


class Machine(_Model):
    """A machine profile: the guest, its vCPUs, RAM, memory backend, firmware and devices (docs/matrix.md)."""

    description: str = ""
    guest: Literal["firmware", "linux"] = "firmware"
    vcpus: int = Field(1, ge=1, le=64)
    ram_mb: int | None = Field(None, ge=16)  # default: settings.guest_ram_mb
    memory: Literal["auto", "memfd", "file"] = "auto"
    firmware: Literal["seabios", "ovmf"] = "seabios"
    devices: list[str] = []
    kernel: str | None = None  # Linux guest: a kernel instead of the assembled guest's
    initrd: str | None = None  # Linux guest: an initramfs instead of the assembled guest's


BUILTIN_MACHINES = {MINIMAL: Machine(description="the firmware guest on one vCPU, -nodefaults, no devices")}


class Upgrade(_Model):
    source: str
    target: str
    scenarios: list[Mode] | None = None
    accels: list[Accel] | None = None
    machines: list[str] | None = None  # default: every machine profile of the matrix


class Settings(_Model):
    guest_ram_mb: int = Field(256, ge=16)
    step_timeout_s: float = Field(60, gt=0)
    build_jobs: int | None = Field(None, ge=1)


class MatrixFile(_Model):
    """The YAML document as written (before cross-checks)."""

    description: str = ""
    trees: dict[str, Tree]
    profiles: dict[str, Profile] = {}
    scenarios: list[Mode] = list(MODES)
    accels: list[Accel] = [Accel.TCG]
    include: list[Rule] = []
    exclude: list[Rule] = []
    upgrades: dict[str, Upgrade] = {}
    machines: dict[str, Machine | None] = {}  # none given: minimal only
    settings: Settings = Settings()


@dataclass(frozen=True)
class Matrix:
    path: Path
    repo_root: Path
    description: str
    trees: dict[str, Tree]
    profiles: dict[str, Profile]
    scenarios: list[Mode]
    accels: list[Accel]
    include: list[Rule]
    exclude: list[Rule]
    upgrades: dict[str, Upgrade]
    machines: dict[str, Machine]  # in file order; minimal alone when the file names none
    settings: Settings
