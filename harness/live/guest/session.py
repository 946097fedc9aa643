"""What a scenario does for its guest besides starting QEMU: for the Linux guest, the disk images, the
console channel and network peer the harness owns, the self-check after the switch, and what is read back
afterwards. The firmware guest needs none of it (:class:`GuestSession` with a firmware machine is a
no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.live import devmem
from harness.live.guest import FIRMWARE_LAYOUT, Layout, linux
from harness.live.guest.console import ConsoleChannel
from harness.live.guest.disks import Record, create, scan
from harness.live.guest.netpeer import NetPeer, TcpStream
from harness.live.machine import DISK_MB, DevicePaths, MachineSpec, device_args, firmware_args
from harness.live.qemu import Qemu

SELF_CHECK_TIMEOUT_S = 45.0
STREAM_END_TIMEOUT_S = 10.0


@dataclass
class DiskImage:
    device: str  # vda, vdb, ... (the order of the profile's disks)
    kind: str  # raw | qcow2
    path: Path
    records: list[Record] = field(default_factory=list)
    problem: str = ""  # the image could not be read
    before_switch: int | None = None  # records in the image when the source's digests were taken


@dataclass
class GuestObservation:
    """What the harness saw of the Linux guest (``None`` in an Observation for the firmware guest)."""

    machine: str
    devices: list[str]
    boot_id: str = ""  # from the guest's boot marker
    info: dict[str, str] = field(default_factory=dict)
    token: str = ""
    self_check: linux.SelfCheck | None = None
    self_check_problem: str = ""  # why no self-check was asked or answered
    console: list[tuple[float, str]] = field(default_factory=list)  # (arrival epoch s, text)
    disks: list[DiskImage] = field(default_factory=list)
    stream: TcpStream | None = None
    streams: int = 0  # TCP connections the guest opened (one is expected)
    net_links: int = 0  # QEMU connections to the peer
    vport: list[int] | None = None  # counters mirrored on the virtio-serial port


class GuestSession:
    def __init__(self, machine: MachineSpec, run_dir: Path, work: Path) -> None:
        self.machine = machine
        self.paths = DevicePaths(run_dir, work, run_dir / "OVMF_VARS.fd")
        self.layout: Layout = linux.LINUX_LAYOUT if machine.linux else FIRMWARE_LAYOUT
        self.console: ConsoleChannel | None = None
        self.peer: NetPeer | None = None
        self.other_peer: NetPeer | None = None  # test fault swap_netdev: the destination's wrong network
        self.disks: list[DiskImage] = []
        self.token = ""
        self.self_check_problem = ""
        self.rom_bytes: int | None = None  # ROM and flash of the source (device memory, not guest RAM)

    @property
    def linux(self) -> bool:
        return self.machine.linux

    def logs(self) -> dict[str, str]:
        """The logs this guest adds to the cell's (name -> file in the work folder; stale ones removed)."""
        found = {"console": "console.log"} if self.linux else {}
        if self.linux and "virtio-serial" in self.machine.devices:
            found["vport"] = self.paths.vport_log.name
        for name in found.values():
            (self.paths.work / name).unlink(missing_ok=True)
        return found

    def argv(
        self, default_firmware: Path, available: set[str], swap_disk: bool = False, swap_netdev: bool = False
    ) -> tuple[list[str] | None, list[str]]:
        """(firmware argv, or None for ``-bios`` of the firmware guest; the machine's device argv). The
        swaps are test faults: the destination's other disk or network peer."""
        paths = dataclasses.replace(self.paths, other_disk=swap_disk, other_net=swap_netdev)
        firmware = firmware_args(self.machine, paths, default_firmware) if self.linux else None
        return firmware, device_args(self.machine, paths, available, linux.kernel_cmdline())

    async def start(self, swap_disk: bool = False, swap_netdev: bool = False) -> None:
        """Before the first QEMU: images, OVMF variables, the console channel and the network peer."""
        if not self.linux:
            return
        for index, name in enumerate(self.machine.disks):
            kind = name.removeprefix("virtio-blk-")
            disk = DiskImage(f"vd{chr(ord('a') + index)}", kind, self.paths.disk(index, kind))
            create(disk.path, kind, DISK_MB << 20)
            if swap_disk and index == 0:  # test fault: the destination's other (empty) disk
                create(dataclasses.replace(self.paths, other_disk=True).disk(0, kind), kind, DISK_MB << 20)
            self.disks.append(disk)
        if self.machine.firmware == "ovmf":
            shutil.copyfile(Path(self.machine.firmware_dir) / "OVMF_VARS_4M.fd", self.paths.ovmf_vars)
        self.console = ConsoleChannel(self.paths.console_socket, self.paths.work / "console.log")
        await self.console.start()
        if "virtio-net" in self.machine.devices:
            self.peer = NetPeer(self.paths.net_socket)
            await self.peer.start()
            if swap_netdev:
                self.other_peer = NetPeer(dataclasses.replace(self.paths, other_net=True).net_socket)
                await self.other_peer.start()

    async def device_memory(self, vm: Qemu, serial_log: Path) -> dict[str, str]:
        """Digests of ``vm``'s device memory (:mod:`harness.live.devmem`); the ACPI tables are found by
        their RSDP in the BIOS area, else at the address the guest reported (a UEFI guest)."""
        if vm.side == "source":  # how many records the disks hold before the switch
            for disk in self.disks:
                with contextlib.suppress(OSError, ValueError):
                    disk.before_switch = len(scan(disk.path))
        serial = serial_log.read_text(errors="replace") if self.linux and serial_log.exists() else ""
        hint = linux.info(serial).get("acpi-rsdp", "")
        rsdp = int(hint, 16) if re.fullmatch(r"0x[0-9a-fA-F]{1,8}", hint) else None
        found, rom_bytes = await devmem.digests(vm, self.paths.run_dir / "devmem.bin", rsdp)
        if vm.side == "source":
            self.rom_bytes = rom_bytes
        return found

    async def self_check(self, serial_log: Path) -> None:
        """Ask the guest (COM2) to read back everything it wrote; wait for its verdict line on COM1, then
        for its TCP stream to end. A guest that does not answer is recorded, not raised: the checks say
        what is missing."""
        if not self.linux or self.console is None:
            return
        self.token = secrets.token_hex(4)
        if not await self.console.send(f"CHECK {self.token}"):
            self.self_check_problem = "no QEMU was connected to the console channel"
            return
        deadline = time.monotonic() + SELF_CHECK_TIMEOUT_S
        while time.monotonic() < deadline:
            text = serial_log.read_text(errors="replace") if serial_log.exists() else ""
            if linux.self_check(text, self.token) is not None:
                break
            await asyncio.sleep(0.2)
        else:
            self.self_check_problem = (
                f"no CPRSELF VERDICT for token {self.token} within {SELF_CHECK_TIMEOUT_S:g} s"
            )
            return
        stream = self.peer.stream() if self.peer else None
        deadline = time.monotonic() + STREAM_END_TIMEOUT_S
        while stream is not None and stream.fin_at is None and stream.reset_at is None:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """After every QEMU ended: close the channels, read the (now final) disk images."""
        for channel in (self.console, self.peer, self.other_peer):
            if channel is not None:
                await channel.close()
        for disk in self.disks:
            try:
                disk.records = await asyncio.to_thread(scan, disk.path)
            except (OSError, ValueError) as exc:
                disk.problem = f"{type(exc).__name__}: {exc}"

    def observe(self, serial_log: str) -> GuestObservation | None:
        """What the guest did (the disks as :meth:`close` read them)."""
        if not self.linux:
            return None
        vport_log = self.paths.vport_log
        return GuestObservation(
            machine=self.machine.name,
            devices=list(self.machine.devices),
            boot_id=linux.boot_id(serial_log),
            info=linux.info(serial_log),
            token=self.token,
            self_check=linux.self_check(serial_log, self.token) if self.token else None,
            self_check_problem=self.self_check_problem,
            console=[(t, d.decode("utf-8", "replace")) for t, d in self.console.chunks]
            if self.console
            else [],
            disks=self.disks,
            stream=self.peer.stream() if self.peer else None,
            streams=len(self.peer.streams) if self.peer else 0,
            net_links=len(self.peer.links) if self.peer else 0,
            vport=(
                linux.vport_counters(vport_log.read_text(errors="replace"))
                if "virtio-serial" in self.machine.devices and vport_log.exists()
                else None
            ),
        )
