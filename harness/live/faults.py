"""Every test-only fault hook: seeded live-update bugs that the checks must catch (``harness.run.detect``).

:class:`Faults` implements the hook points of :class:`~harness.live.context.Hooks` for a
:class:`~harness.live.spec.FaultSpec`; the driver uses it only when it was handed a fault file, which
the matrix runner never writes. Each hook acts only when its field is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from harness.live.context import DESTINATION, SOURCE, Hooks, ScenarioContext
from harness.live.errors import ScenarioFailed
from harness.live.guest.disks import damage_record
from harness.live.qemu import Qemu
from harness.live.spec import FaultSpec
from harness.live.vocab import Mode

# corrupt_ram flips one page inside the pattern region (written once at boot, never again by the guest)
CORRUPT_OFFSET, CORRUPT_LEN = 0x1000, 0x1000
PRE_SWITCHOVER_MODES = (Mode.NORMAL, Mode.CPR_TRANSFER)  # their destination QEMU already runs then
ROM_BLOCKS = ("pc.bios", "system.flash0", "system.flash1")  # firmware ROM / flash RAM blocks (memfd names)
DAMAGED_RECORD = 1  # modify_disk: the record (sector) rewritten on the first disk


class Faults(Hooks):
    def __init__(self, spec: FaultSpec, mode: Mode) -> None:
        self.spec, self.mode = spec, mode
        self.zombie_pid: int | None = None

    def needs_pause_before_switchover(self) -> bool:
        """hang_migration (never continued), kill_source_during_migration, and the faults that alter state
        between the two QEMUs in the modes whose destination QEMU already runs at pre-switchover: the
        source is held there."""
        s = self.spec
        between = s.corrupt_ram or s.modify_disk or s.rewrite_rom
        return (
            s.hang_migration
            or s.kill_source_during_migration
            or (between and self.mode in PRE_SWITCHOVER_MODES)
        )

    async def after_migrate(self, ctx: ScenarioContext, src: Qemu, start: int) -> None:
        if self.spec.kill_source_during_migration:
            await kill_source_mid_migration(ctx, src, start)

    async def at_switchover(self, ctx: ScenarioContext, src: Qemu, start: int, dst: Qemu) -> None:
        """With the source stopped at pre-switchover: flip guest RAM (corrupt_ram) or firmware ROM
        (rewrite_rom) in ``dst``, or a record of the first disk image (modify_disk); then continue."""
        s = self.spec
        if not (s.corrupt_ram or s.modify_disk or s.rewrite_rom) or self.mode not in PRE_SWITCHOVER_MODES:
            return
        async with ctx.step("wait for pre-switchover (test fault)", src.side):
            await src.wait_event(
                lambda e: e["event"] == "MIGRATION" and e["data"].get("status") == "pre-switchover", start
            )
        await self._between(ctx, dst)
        async with ctx.step("migrate-continue", src.side):
            await src.cmd("migrate-continue", {"state": "pre-switchover"})

    async def between_qemus(self, ctx: ScenarioContext, vm: Qemu | None = None) -> None:
        """The same faults in cpr-reboot (no QEMU running: the RAM file, the disk image) and cpr-exec (the
        new QEMU, before ``migrate-incoming``)."""
        if self.mode not in PRE_SWITCHOVER_MODES:
            await self._between(ctx, vm)

    async def _between(self, ctx: ScenarioContext, vm: Qemu | None) -> None:
        if self.spec.corrupt_ram:
            await corrupt_guest_ram(ctx, vm)
        if self.spec.modify_disk:
            async with ctx.step("rewrite a disk record (test fault)", "harness"):
                if not ctx.guest.disks:
                    raise ScenarioFailed("modify_disk: the machine has no disk")
                where = await asyncio.to_thread(damage_record, ctx.guest.disks[0].path, DAMAGED_RECORD)
            ctx.note("disk image modified between the QEMUs (test fault)", where)
        if self.spec.rewrite_rom and vm is not None:
            async with ctx.step("rewrite firmware ROM (test fault)", vm.side):
                assert vm.pid is not None
                where = rewrite_rom(vm.pid)
            ctx.note("firmware ROM rewritten in the new QEMU (test fault)", where)

    async def after_resume(self, ctx: ScenarioContext, dst: Qemu) -> None:
        if self.spec.reset_destination:
            async with ctx.step("system_reset (test fault)", DESTINATION):
                await dst.cmd("system_reset")
        if self.spec.pause_destination:
            async with ctx.step("stop (test fault)", DESTINATION):
                await dst.cmd("stop")

    def keeps_old_running(self) -> bool:
        return self.spec.leave_source_running

    async def after_recipe(self, ctx: ScenarioContext) -> None:
        if self.spec.leave_zombie:
            self.zombie_pid = await leave_zombie(ctx)

    def cleanup(self) -> None:
        if self.zombie_pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.zombie_pid, 0)


async def kill_source_mid_migration(ctx: ScenarioContext, src: Qemu, start: int) -> None:
    """SIGKILL the source once it reached pre-switchover; the scenario then fails saying what the
    destination did."""
    async with ctx.step("kill source before switchover (test fault)", SOURCE):
        await src.wait_event(
            lambda e: (
                e["event"] == "MIGRATION" and e["data"].get("status") in ("pre-switchover", "completed")
            ),
            start,
        )
        src.kill()
    others = [vm for vm in ctx.vms if vm is not src and vm.proc is not None and vm.proc is not src.proc]
    outcome = "no destination was running"
    for dst in others:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dst.wait_exit(), 5)
        code = dst.returncode
        outcome = (
            f"destination exited {code}"
            if code is not None
            else f"destination left in {await ctx.state_of(dst)}"
        )
        tail = dst.stderr_tail(2)
        outcome += f": {tail}" if tail else ""
    raise ScenarioFailed(f"source QEMU killed (SIGKILL) during migration; {outcome}")


async def corrupt_guest_ram(ctx: ScenarioContext, vm: Qemu | None = None) -> None:
    """Flip a page of the pattern region in ``vm``'s guest RAM (through ``/proc/<pid>/mem``), or in the
    cpr-reboot RAM file when no QEMU runs (between the old QEMU's quit and the new one's start)."""
    gpa = ctx.guest.layout.pattern_addr + CORRUPT_OFFSET
    async with ctx.step("alter guest RAM (test fault)", vm.side if vm else "harness"):
        if vm is None:
            invert_bytes(ctx.shm_file, gpa, CORRUPT_LEN)
            where = str(ctx.shm_file)
        else:
            assert vm.pid is not None
            where = invert_guest_ram(vm.pid, ctx.ram_mb * 1024 * 1024, gpa, CORRUPT_LEN)
    ctx.note("guest RAM altered (test fault)", f"{CORRUPT_LEN} bytes at {gpa:#x}: {where}")


async def leave_zombie(ctx: ScenarioContext) -> int:
    """Spawn a child that exits and is never reaped (a ``<defunct>`` entry); returns its pid."""
    async with ctx.step("leave a defunct child (test fault)", "harness"):
        pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
        stat = Path(f"/proc/{pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            await asyncio.sleep(0.01)
    return pid


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


def rewrite_rom(pid: int, length: int = 0x1000) -> str:
    """Flip ``length`` bytes in the middle of the firmware's ROM or flash in QEMU ``pid`` (the memfd of the
    first of :data:`ROM_BLOCKS` it maps: shared RAM blocks are named memfds with aux-ram-share=on). The
    middle: the firmware guest runs from its ROM's first bytes, and the guest must go on running."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    for block in ROM_BLOCKS:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) > 5 and fields[5].startswith(f"/memfd:{block} "):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                at = start + (end - start) // 2
                invert_bytes(Path(f"/proc/{pid}/mem"), at, length)
                return f"pid {pid} {block} ({fields[5].strip()}) at {at:#x}, {length} bytes"
    raise ScenarioFailed(f"rewrite_rom: pid {pid} maps none of {', '.join(ROM_BLOCKS)} as a memfd")
