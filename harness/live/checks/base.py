"""What a scenario observed of both QEMUs, and the two ways a check ends (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.live.result import Check
from harness.live.vocab import CheckVerdict, Mode

if TYPE_CHECKING:
    from harness.live.guest.session import GuestObservation


@dataclass
class SideObservation:
    role: str  # "source" | "destination"
    runstates: list[str] = field(default_factory=list)  # query-status at each step, consecutive dups removed
    events: list[dict[str, Any]] = field(default_factory=list)  # {"event", "data", "t" (QEMU epoch s)}
    qtree: str | None = None  # `info qtree` text
    counters: list[int] = field(default_factory=list)  # guest counter read via QMP, in read order
    ram_digest: str | None = None  # sha256 of the guest's pattern region
    device_memory: dict[str, str] | None = None  # region label -> sha256 (ROM, flash, video, ACPI)
    exit_code: int | None = None  # None = process still alive at teardown
    resumed_after_migration: bool = False  # src ran again after its migration completed (forbidden)


@dataclass
class Observation:
    mode: Mode
    serial_log: str  # whole serial log, shared by both sides (append=on)
    source: SideObservation
    destination: SideObservation | None  # None for boot
    guest_ram_bytes: int
    state_file_bytes: int | None = None  # cpr-reboot (and cpr-exec) state file size
    rom_bytes: int = 0  # ROM and flash the source maps (not guest RAM: a cpr-reboot state file carries it)
    downtime_ms: float | None = None  # QEMU's own figure from query-migrate
    leftover_processes: list[str] = field(default_factory=list)  # "pid comm state" found after teardown
    upgrade: bool = False  # source and destination are different QEMU builds
    guest: GuestObservation | None = None  # the Linux guest's own evidence (None: the firmware guest)
    refusal: RefusalObservation | None = None  # a refusal scenario's outcome (None: a mode's recipe)
    qemu_stderr: dict[str, str] = field(default_factory=dict)  # log name -> every QEMU's stderr (sanitizers)


@dataclass
class RefusalObservation:
    """What a refusal scenario provoked, what QEMU answered, and the source's evidence before it (the
    source's own fields of the :class:`Observation` hold the evidence after it)."""

    name: str
    provokes: str
    documented: str
    before: SideObservation
    refused: str = ""  # QEMU's words ("": it did not refuse)
    where: str = ""  # the command or event that carried them


def passed_if(name: str, ok: bool, expected: str, observed: str, detail: str = "") -> Check:
    """A check named ``name`` that passes when ``ok``."""
    return Check(name, CheckVerdict.PASS if ok else CheckVerdict.FAIL, expected, observed, detail)


def skipped(name: str, why: str) -> Check:
    """A check that does not apply here (only for what a mode does not do, never for missing evidence)."""
    return Check(name, CheckVerdict.SKIP, "-", why)
