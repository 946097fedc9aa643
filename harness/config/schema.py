"""The matrix file's schema: what each key may hold (pydantic models, validated with positions).

The schema of every key, with examples, is in docs/matrix.md; cross-checks between keys (names that
must exist, images, patch folders, rules, upgrades) are in :mod:`harness.config.matrix`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from harness.live.machine import MINIMAL
from harness.live.migration import DEFAULT as DEFAULT_MIGRATION
from harness.live.vocab import MODES, Accel, Mode

TreeKind = Literal["tarball", "git", "debian-source", "local", "prebuilt"]
PREBUILT = "prebuilt"  # profile name of prebuilt trees' build cells
NAME_RE = re.compile(r"[A-Za-z0-9._+-]+")
_COMMON = {"kind", "image", "description", "ccache"}
# kind -> (required fields, other allowed fields); anything else set on the tree is an error
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tarball": (("url", "sha256"), ("patches", "profiles", "fill_subprojects")),
    "git": (("url", "ref"), ("submodules", "patches", "profiles", "fill_subprojects")),
    "debian-source": (("version",), ("package", "patches", "profiles", "fill_subprojects")),
    "local": (("path",), ("patches", "profiles", "fill_subprojects")),
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
    # "store": fill required submodule/subproject folders the tree lacks from the subproject store
    fill_subprojects: Literal["store"] | None = None
    ccache: str | None = None  # the ccache trust domain (default: see ccache_domain)

    def ccache_domain(self, name: str) -> str:
        """The ccache folder this tree's builds share: its ``ccache`` key, else its image's, except that a
        ``local`` tree (a checkout on this machine, whatever it holds) shares with no other tree."""
        if self.ccache:
            return self.ccache
        return f"local-{name}" if self.kind == "local" else f"image-{self.image}"


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
    migration: str | None = None  # optional: a rule without it matches every option set


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


class MigrationSet(_Model):
    """A migration option set: capabilities turned on and parameters set on both QEMUs (docs/matrix.md)."""

    description: str = ""
    capabilities: list[str] = []
    parameters: dict[str, StrictBool | StrictInt | StrictStr] = {}


BUILTIN_MIGRATIONS = {
    DEFAULT_MIGRATION: MigrationSet(
        description="the recipe's own options only (x-ignore-shared for cpr-reboot)"
    )
}


class Upgrade(_Model):
    source: str
    target: str
    scenarios: list[Mode] | None = None
    accels: list[Accel] | None = None
    machines: list[str] | None = None  # default: every machine profile of the matrix
    migration: list[str] | None = None  # default: every option set of the matrix


class Settings(_Model):
    """Run settings; every number is bounded (no ``.inf``, NaN or absurd values reach a timer or Docker)
    and a number must be written as one (``true`` is not 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    guest_ram_mb: int = Field(256, ge=16, le=65536)
    step_timeout_s: float = Field(60, gt=0, le=3600, allow_inf_nan=False)
    build_jobs: int | None = Field(None, ge=1, le=1024)
    # Container limits (harness.engine.sandbox): memory of a build container, of a scenario container
    # (default: room for two guests, their /dev/shm RAM files and QEMU itself), processes per container.
    build_memory_mb: int = Field(8192, ge=512, le=1048576)
    scenario_memory_mb: int | None = Field(None, ge=256, le=1048576)
    pids_limit: int = Field(4096, ge=64, le=4194304)

    @property
    def shm_mb(self) -> int:
        """``/dev/shm`` of a scenario container: both guests' RAM files (cpr-reboot) plus slack."""
        return 2 * self.guest_ram_mb + 256

    @property
    def scenario_memory(self) -> int:
        return self.scenario_memory_mb or 2 * self.shm_mb + 1024


class MatrixFile(_Model):
    """The YAML document as written (before cross-checks)."""

    description: str = ""
    trees: dict[str, Tree]
    profiles: dict[str, Profile] = {}
    scenarios: list[Mode] = list(MODES)
    refusals: list[str] = []  # refusal scenarios (harness.live.refusals), run like scenarios
    accels: list[Accel] = [Accel.TCG]
    include: list[Rule] = []
    exclude: list[Rule] = []
    upgrades: dict[str, Upgrade] = {}
    machines: dict[str, Machine | None] = {}  # none given: minimal only
    migration: dict[str, MigrationSet | None] = {}  # none given: default only
    settings: Settings = Settings()


@dataclass(frozen=True)
class Matrix:
    path: Path
    repo_root: Path
    description: str
    trees: dict[str, Tree]
    profiles: dict[str, Profile]
    scenarios: list[Mode]
    refusals: list[str]
    accels: list[Accel]
    include: list[Rule]
    exclude: list[Rule]
    upgrades: dict[str, Upgrade]
    machines: dict[str, Machine]  # in file order; minimal alone when the file names none
    migration: dict[str, MigrationSet]  # in file order; default alone when the file names none
    settings: Settings
