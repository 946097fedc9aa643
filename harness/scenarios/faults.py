"""Test-only faults: seeded live-update bugs that the checks must catch (see ``harness.detect``).

Each is switched on by an explicit :class:`~harness.scenarios.ScenarioSpec` field, off by default; the
host runner never sets them, so a matrix cannot reach them. The mode recipes call these hooks at fixed
points; every hook is a no-op unless its field is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness import guest

if TYPE_CHECKING:
    from harness.scenarios import ScenarioSpec
    from harness.scenarios.context import ScenarioContext
    from harness.vm import Qemu

# corrupt_ram flips one page inside the pattern region (written once at boot, never again by the guest)
CORRUPT_GPA, CORRUPT_LEN = guest.PATTERN_ADDR + 0x1000, 0x1000


def pauses_at_switchover(spec: ScenarioSpec) -> bool:
    """Whether the source must pause at pre-switchover: hang_migration (never continued) and corrupt_ram
    in the modes whose destination QEMU already runs then (normal, cpr-transfer): the source is stopped
    there and the destination not resumed."""
    return spec.hang_migration or (spec.corrupt_ram and spec.scenario in ("normal", "cpr-transfer"))


async def at_switchover(ctx: ScenarioContext, src: Qemu, start: int, dst: Qemu) -> None:
    """corrupt_ram: with the source stopped at pre-switchover, flip guest RAM in ``dst``; continue."""
    if not ctx.spec.corrupt_ram or not pauses_at_switchover(ctx.spec):
        return
    async with ctx.step("wait for pre-switchover (test fault)", src.side):
        await src.wait_event(
            lambda e: e["event"] == "MIGRATION" and e["data"].get("status") == "pre-switchover", start
        )
    await corrupt_guest_ram(ctx, dst)
    async with ctx.step("migrate-continue", src.side):
        await src.cmd("migrate-continue", {"state": "pre-switchover"})


async def corrupt_guest_ram(ctx: ScenarioContext, vm: Qemu | None = None) -> None:
    """corrupt_ram: flip a page of the pattern region in ``vm``'s guest RAM (through ``/proc/<pid>/mem``),
    or in the cpr-reboot RAM file when no QEMU runs (between the old QEMU's quit and the new one's start)."""
    if not ctx.spec.corrupt_ram:
        return
    async with ctx.step("alter guest RAM (test fault)", vm.side if vm else "harness"):
        if vm is None:
            invert_bytes(ctx.shm_file, CORRUPT_GPA, CORRUPT_LEN)
            where = str(ctx.shm_file)
        else:
            assert vm.pid is not None
            where = invert_guest_ram(vm.pid, ctx.spec.guest_ram_mb * 1024 * 1024, CORRUPT_GPA, CORRUPT_LEN)
    ctx.note("guest RAM altered (test fault)", f"{CORRUPT_LEN} bytes at {CORRUPT_GPA:#x}: {where}")


async def leave_zombie(ctx: ScenarioContext) -> int:
    """leave_zombie: spawn a child that exits and is never reaped (a ``<defunct>`` entry); returns its pid."""
    async with ctx.step("leave a defunct child (test fault)", "harness"):
        pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
        stat = Path(f"/proc/{pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            await asyncio.sleep(0.01)
    return pid


def reap(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def guest_ram_mapping(pid: int, size: int) -> tuple[int, str]:
    """(start address, backing) of the one read-write mapping of exactly ``size`` bytes in process ``pid``:
    QEMU's guest RAM block (anonymous for plain ``-m``, ``/memfd:...`` or the ``/dev/shm`` file)."""
    found = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if end - start == size and fields[1].startswith("rw"):
            found.append((start, fields[5].strip() if len(fields) > 5 else "(anonymous)"))
    if len(found) != 1:
        raise RuntimeError(f"pid {pid}: {len(found)} read-write mappings of {size} bytes, expected one")
    return found[0]


def invert_bytes(path: Path, offset: int, length: int) -> None:
    """Flip every bit of ``length`` bytes at ``offset`` of ``path`` (a file, or ``/proc/<pid>/mem``)."""
    with path.open("r+b", buffering=0) as f:
        f.seek(offset)
        old = f.read(length)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))


def invert_guest_ram(pid: int, ram_bytes: int, gpa: int, length: int) -> str:
    """Flip ``length`` bytes of guest-physical RAM at ``gpa`` in QEMU ``pid``; returns where it wrote.

    Below the q35 PCI hole (2 GiB) guest-physical address = offset in the RAM block."""
    start, backing = guest_ram_mapping(pid, ram_bytes)
    invert_bytes(Path(f"/proc/{pid}/mem"), start + gpa, length)
    return f"pid {pid} {backing} at {start + gpa:#x}"
