"""What the in-container driver is asked to do: a :class:`ScenarioSpec` (what a matrix can ask for) and,
for the harness's own tests and the detection campaign only, a :class:`FaultSpec` (seeded bugs).

The host runner writes ``spec.json`` from the matrix cell and never writes a fault file; ``detect`` and
the tests add ``faults.json``. Both are JSON objects whose keys are the fields below; an unknown or
mistyped key is a :class:`~harness.live.errors.SpecError` naming it.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Self

from harness.live.errors import SpecError
from harness.live.machine import MachineSpec
from harness.live.migration import MigrationOptions
from harness.live.refusals import REFUSALS, Refusal
from harness.live.vocab import Accel, Mode


def _load(cls: type[Any], d: object, what: str) -> Any:
    """``cls(**d)`` with every key known and every value of its field's type (ints are floats too)."""
    if not isinstance(d, dict):
        raise SpecError(f"a {what} must be a JSON object")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SpecError(f"unknown {what} key(s): {', '.join(unknown)}")
    for key, value in d.items():
        if not _is(value, hints[key]):
            raise SpecError(f"{what} key {key!r}: {value!r} is not of type {hints[key]}")
    return cls(**d)


def _is(value: object, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_is(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


@dataclass
class ScenarioSpec:
    """Everything the in-container driver needs for one scenario cell (JSON-able)."""

    cell_id: str
    scenario: str  # a Mode value, or the name of a refusal scenario (harness.live.refusals)
    accel: str = "tcg"  # an Accel value (kvm falls back to tcg when /dev/kvm is unusable)
    src_qemu: str = "/usr/bin/qemu-system-x86_64"
    dst_qemu: str = ""  # "" = src_qemu; differs for upgrade cells
    data_dirs: list[str] = field(default_factory=list)  # -L for the source (and destination)
    dst_data_dirs: list[str] | None = None  # -L for the destination when it differs
    workdir: str = "/work"  # logs, state file, firmware cache
    guest_ram_mb: int = 256
    step_timeout_s: float = 60.0
    default_devices: bool = False  # False = -nodefaults
    reproduce: str = ""  # copied into the result
    observe_s: float = 1.0  # how long the guest is watched running on each side
    kvm_unavailable_reason: str = ""  # set by the host runner when it could not lend /dev/kvm
    repeat: int = 1  # run the scenario this many times in this container (fresh QEMUs each time)
    machine: dict[str, Any] = field(default_factory=dict)  # a MachineSpec; {} = minimal
    migration: dict[str, Any] = field(default_factory=dict)  # a MigrationOptions; {} = the default set

    @property
    def machine_spec(self) -> MachineSpec:
        return MachineSpec.from_json(self.machine)

    @property
    def migration_options(self) -> MigrationOptions:
        return MigrationOptions.from_json(self.migration)

    @property
    def refusal(self) -> Refusal | None:
        """The refusal scenario this spec runs (None: a mode's own recipe)."""
        return REFUSALS.get(self.scenario)

    @property
    def mode(self) -> Mode:
        """The mode the scenario runs (a refusal scenario: the mode it tries)."""
        refusal = self.refusal
        return refusal.mode if refusal else Mode(self.scenario)

    @property
    def upgrade(self) -> bool:
        return bool(self.dst_qemu) and self.dst_qemu != self.src_qemu

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: object) -> Self:
        """Build a spec from JSON; raises SpecError naming an unknown, missing or bad key."""
        if isinstance(d, dict):
            missing = [k for k in ("cell_id", "scenario") if k not in d]
            if missing:
                raise SpecError(f"missing spec key(s): {', '.join(missing)}")
        spec: Self = _load(cls, d, "spec")
        if spec.scenario not in tuple(Mode) and spec.scenario not in REFUSALS:
            known = ", ".join([*Mode, *REFUSALS])
            raise SpecError(f"scenario {spec.scenario!r} is not one of {known}")
        if spec.accel not in tuple(Accel):
            raise SpecError(f"accel {spec.accel!r} is not one of {', '.join(Accel)}")
        if spec.guest_ram_mb < 16:
            raise SpecError(
                f"guest_ram_mb must be an integer >= 16 (the guest uses 3 MiB), not {spec.guest_ram_mb!r}"
            )
        if not 0 < spec.step_timeout_s <= 3600 or not 0 <= spec.observe_s <= 600:
            raise SpecError("step_timeout_s must be in (0, 3600] s and observe_s in [0, 600] s")
        if not 1 <= spec.repeat <= 1000:
            raise SpecError(f"repeat must be an integer in [1, 1000], not {spec.repeat!r}")
        spec.machine_spec  # noqa: B018 (validates the machine, SpecError naming the key)
        options = spec.migration_options  # validates the option set, SpecError naming the key
        if not options.default and (spec.mode is Mode.BOOT or spec.refusal is not None):
            raise SpecError(
                f"option set {options.name!r} on scenario {spec.scenario!r}: nothing migrates with it"
            )
        return spec


@dataclass
class FaultSpec:
    """Seeded live-update bugs and switched-off guard rails: tests and ``detect`` only, all off by default.

    Each field is read by exactly one hook of :mod:`harness.live.faults`; each seeded bug must make a
    check fail (see ``harness/run/detect.py`` for the catalogue and the check expected to catch it).
    """

    guard_rails: bool = True  # False = let configurations through that QEMU silently mishandles
    extra_dst_args: list[str] = field(default_factory=list)  # appended to the destination argv
    shared_ram: bool = True  # False = plain -m RAM even for cpr modes
    ignore_shared: bool = True  # False = cpr-reboot without x-ignore-shared (RAM goes into the state file)
    kill_source_during_migration: bool = False  # SIGKILL the source before switchover
    reset_destination: bool = False  # system_reset on the destination right after it resumes
    corrupt_ram: bool = False  # flip guest RAM (pattern region) between source stop and destination resume
    leave_source_running: bool = False  # skip quitting the old QEMU (normal, cpr-reboot, cpr-transfer)
    leave_zombie: bool = False  # leave an unreaped (defunct) child of the driver behind
    pause_destination: bool = False  # `stop` the destination right after it resumes
    hang_migration: bool = False  # hold the source at pre-switchover and never continue
    cpr_transfer_uri_only: bool = False  # cpr-transfer `migrate {uri}` without channels (QEMU 11.1 aborts)
    # Linux guest (machine profiles with devices) and device memory:
    modify_disk: bool = False  # rewrite a record of the first disk image between the two QEMUs
    swap_disk: bool = False  # the destination gets another (empty) first disk
    swap_netdev: bool = False  # the destination's NIC is wired to another network peer
    rewrite_rom: bool = False  # flip a page of the firmware ROM/flash in the new QEMU before it resumes

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def active(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what this fault set changes)."""
        default = FaultSpec()
        return {k: v for k, v in self.to_json().items() if getattr(default, k) != v}

    @classmethod
    def from_json(cls, d: object) -> Self:
        faults: Self = _load(cls, d, "fault spec")
        return faults
