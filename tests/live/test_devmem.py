"""Device memory: the regions of QEMU's memory map (``info mtree -f`` as QEMU 10.2 and 11.1 print it), the
RSDP search and the ACPI table walk (over a memory image), and when a guest stops booting."""

from __future__ import annotations

import asyncio
import struct

from conftest import DATA

from harness.live import devmem
from harness.live.errors import EnvironmentLimit, ScenarioFailed
from harness.live.kvm import stopped_guest

MTREE = DATA / "mtree"


def test_ovmf_regions_flash_rom_and_shadow() -> None:
    regions = devmem.regions((MTREE / "ovmf-q35-10.2.txt").read_text())
    labels = [r.label for r in regions]
    assert labels == [
        "rom pc.rom 0xc0000-0xdffff",
        "rom system.flash0 0xe0000-0xfffff",
        "romd system.flash1 0xffc00000-0xffc83fff",
        "romd system.flash0 0xffc84000-0xffffffff",
    ]
    assert {r.block for r in regions} == {"pc.rom", "system.flash0", "system.flash1"}
    assert regions[3].size == 0xFFFFFFFF - 0xFFC84000 + 1


def test_seabios_vga_regions_skip_guest_ram_but_keep_its_rom_shadow() -> None:
    regions = devmem.regions((MTREE / "seabios-vga-q35-11.1.txt").read_text())
    by_label = {r.label: r for r in regions}
    assert "vga.vram 0xfd000000-0xfd00ffff (head)" in by_label
    assert by_label["vga.vram 0xfd000000-0xfd00ffff (head)"].size == devmem.VIDEO_HEAD
    shadow = [r for r in regions if r.label.startswith("rom ram0")]
    assert shadow and all(r.block == "" for r in shadow)  # guest RAM: not counted as ROM in the stream
    assert by_label["rom pc.bios 0xfffc0000-0xffffffff"].block == "pc.bios"
    assert not [r for r in regions if r.label.startswith("ram0")]


def test_a_map_without_the_system_address_space_has_no_regions() -> None:
    assert devmem.regions('FlatView #0\n AS "I/O", root: io\n') == []


def _table(sig: bytes, body: bytes) -> bytes:
    return sig + struct.pack("<I", 36 + len(body)) + b"\0" * 28 + body


def _memory() -> dict[int, bytes]:
    rsdp = b"RSD PTR " + b"\0" + b"BOCHS " + b"\0" + struct.pack("<I", 0x1000)
    rsdp = rsdp[:8] + bytes([(-sum(rsdp)) & 0xFF]) + rsdp[9:]
    facp = _table(b"FACP", struct.pack("<II", 0x4000, 0x5000) + b"\0" * 72)
    return {
        0xF5270: rsdp,
        0x1000: _table(b"RSDT", struct.pack("<II", 0x2000, 0x3000)),
        0x2000: facp,
        0x3000: _table(b"APIC", b"\x01" * 8),
        0x4000: _table(b"FACS", b"\x02" * 28),
        0x5000: _table(b"DSDT", b"\x5b\x80" * 7),
    }


def test_rsdp_search_and_table_walk() -> None:
    mem = _memory()
    area = bytearray(0x20000)
    area[0x15270 : 0x15270 + 20] = mem[0xF5270]
    assert devmem.find_rsdp(bytes(area), 0xE0000) == 0xF5270
    area[0x15278] ^= 1  # a wrong checksum is no RSDP
    assert devmem.find_rsdp(bytes(area), 0xE0000) is None

    async def read_at(addr: int, size: int) -> bytes:
        base = max(a for a in mem if a <= addr)
        return mem[base][addr - base : addr - base + size].ljust(size, b"\0")

    tables = asyncio.run(devmem.acpi_tables(read_at, 0xF5270))
    assert sorted(tables) == ["acpi APIC 0x3000", "acpi DSDT 0x5000", "acpi FACP 0x2000", "acpi RSDT 0x1000"]
    assert all(len(d) == 64 for d in tables.values())
    assert asyncio.run(devmem.acpi_tables(read_at, 0x3000)) == {"acpi": "no RSDP at 0x3000"}


class _Vm:
    side = "source"

    def __init__(self, stderr: str) -> None:
        self.stderr = stderr

    def stderr_tail(self, lines: int = 8) -> str:
        return "\n".join(self.stderr.splitlines()[-lines:])


NESTED_KVM = (DATA / "kvm-internal-error.txt").read_text()


def test_a_nested_kvm_that_cannot_run_the_guest_is_a_limit_of_the_host() -> None:
    found = stopped_guest("internal-error", "kvm", _Vm(NESTED_KVM))
    assert isinstance(found, EnvironmentLimit)
    assert "KVM internal error. Suberror: 1" in str(found) and "emulation failure" in str(found)
    tcg = stopped_guest("internal-error", "tcg", _Vm(NESTED_KVM))
    assert isinstance(tcg, ScenarioFailed) and not isinstance(tcg, EnvironmentLimit)
    panic = stopped_guest("guest-panicked", "kvm", _Vm("qemu: guest panicked"))
    assert isinstance(panic, ScenarioFailed) and "guest-panicked" in str(panic)
    assert stopped_guest("running", "kvm", _Vm(NESTED_KVM)) is None
    assert stopped_guest("prelaunch", "tcg", _Vm("")) is None


def test_sample_files_are_what_qemu_printed() -> None:
    for path in (MTREE / "ovmf-q35-10.2.txt", MTREE / "seabios-vga-q35-11.1.txt"):
        assert path.read_text().startswith("FlatView #0"), path
