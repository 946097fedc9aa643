"""Guest-visible memory the guest does not write: firmware ROM and flash, the shadowed option ROMs, video
memory, the ACPI tables. A new QEMU of a live update must not reload any of it (``pflash: fix cpr``,
``hw/loader: fix roms during cpr``, ``hw/qxl: fix cpr``); the device-memory check compares the digests
taken here on both sides.

The regions come from QEMU itself: ``info mtree -f``, the flat view of the system address space. Every
``rom``/``romd`` range is taken whole (BIOS, flash, the option-ROM shadow below 1 MiB); of every other
RAM range that is not the guest's RAM (video memory), the first :data:`VIDEO_HEAD` bytes. The ACPI tables
are found from the RSDP, searched in the BIOS area as the guest kernel does (or the address the guest
reported under UEFI), and digested one by one; FACS is left out (it is the OS's to write).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from harness.live.qemu import Qemu

_RANGE = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, (\w+)\): (\S+)")
VIDEO_HEAD = 0x10000
MAX_REGION = 16 << 20
MAX_TABLE = 1 << 20
BIOS_AREA = (0xE0000, 0x20000)


@dataclass(frozen=True)
class Region:
    label: str  # e.g. "rom pc.bios 0xfffc0000-0xffffffff"
    addr: int
    size: int
    block: str = ""  # the RAM block of a ROM or flash that is not guest RAM (its own memory in the stream)


def flat_view(mtree: str, address_space: str = "memory") -> list[tuple[int, int, str, str]]:
    """``(start, end, kind, name)`` of the flat view whose address spaces include ``address_space``."""
    blocks = re.split(r"\n(?=FlatView #)", mtree.replace("\r\n", "\n"))
    for block in blocks:
        if f'AS "{address_space}",' not in block:
            continue
        return [
            (int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4))
            for m in map(_RANGE.match, block.splitlines())
            if m
        ]
    return []


def regions(mtree: str) -> list[Region]:
    """The device-memory regions of a flat view (see the module docstring)."""
    ranges = flat_view(mtree)
    main = next((name for start, _, _, name in ranges if start == 0), "")
    out = []
    for start, end, kind, name in ranges:
        size = end - start + 1
        if kind in ("rom", "romd"):
            block = name if name != main else ""  # the shadowed option ROMs are guest RAM
            out.append(Region(f"{kind} {name} {start:#x}-{end:#x}", start, min(size, MAX_REGION), block))
        elif kind == "ram" and name != main:
            head = min(size, VIDEO_HEAD)
            out.append(Region(f"{name} {start:#x}-{start + head - 1:#x} (head)", start, head))
    return out


async def read(vm: Qemu, addr: int, size: int, dump: Path) -> bytes:
    """``size`` bytes of guest-physical memory at ``addr`` (pmemsave; the dump file is removed)."""
    await vm.cmd("pmemsave", {"val": addr, "size": size, "filename": str(dump)})
    try:
        return dump.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            dump.unlink()


def find_rsdp(bios_area: bytes, base: int) -> int | None:
    """The address of a valid RSDP ("RSD PTR ", 16-byte aligned, checksum 0) in ``bios_area``."""
    for off in range(0, len(bios_area) - 20, 16):
        if bios_area[off : off + 8] == b"RSD PTR " and sum(bios_area[off : off + 20]) & 0xFF == 0:
            return base + off
    return None


Reader = Callable[[int, int], Awaitable[bytes]]  # (guest-physical address, size) -> bytes


async def acpi_tables(read_at: Reader, rsdp: int) -> dict[str, str]:
    """``{"acpi <SIG> <addr>": sha256}`` of every table reachable from the RSDP, FACS excluded."""
    head = await read_at(rsdp, 36)
    if head[:8] != b"RSD PTR ":
        return {"acpi": f"no RSDP at {rsdp:#x}"}
    xsdt = struct.unpack("<Q", head[24:32])[0] if head[15] >= 2 else 0
    root, width = (xsdt, 8) if xsdt else (struct.unpack("<I", head[16:20])[0], 4)
    out: dict[str, str] = {}
    todo: list[int] = [root]
    seen: set[int] = set()
    while todo:
        addr = todo.pop(0)
        if not addr or addr in seen or len(seen) > 64:
            continue
        seen.add(addr)
        header = await read_at(addr, 36)
        sig, length = header[:4].decode("ascii", "replace"), struct.unpack("<I", header[4:8])[0]
        if sig == "FACS" or not 36 <= length <= MAX_TABLE:
            continue
        table = await read_at(addr, length)
        out[f"acpi {sig} {addr:#x}"] = hashlib.sha256(table).hexdigest()
        if addr == root:
            entries = table[36:]
            fmt = "<Q" if width == 8 else "<I"
            todo += [
                struct.unpack(fmt, entries[i : i + width])[0]
                for i in range(0, len(entries) - width + 1, width)
            ]
        elif sig == "FACP":
            todo.append(struct.unpack("<I", table[40:44])[0])  # DSDT (FACS at 36 is skipped)
            if length >= 148:
                todo.append(struct.unpack("<Q", table[140:148])[0])  # X_DSDT
    return out


async def digests(vm: Qemu, dump: Path, rsdp_hint: int | None = None) -> tuple[dict[str, str], int]:
    """``{region label: sha256}`` of every device-memory region of ``vm`` and of its ACPI tables, and the
    bytes of ROM and flash among them (a cpr-reboot state file carries those: they are not guest RAM)."""
    out: dict[str, str] = {}
    blocks: dict[str, int] = {}  # a block mapped twice (pc.bios below 1 MiB and below 4 GiB) counts once
    for region in regions(await vm.hmp("info mtree -f")):
        out[region.label] = hashlib.sha256(await read(vm, region.addr, region.size, dump)).hexdigest()
        if region.block:
            blocks[region.block] = max(blocks.get(region.block, 0), region.size)
    rsdp = find_rsdp(await read(vm, BIOS_AREA[0], BIOS_AREA[1], dump), BIOS_AREA[0]) or rsdp_hint
    if rsdp:
        out.update(await acpi_tables(lambda addr, size: read(vm, addr, size, dump), rsdp))
    return out, sum(blocks.values())
