"""Machine profiles: which guest a scenario boots, on how many vCPUs and how much RAM, with which firmware
and devices; and the QEMU arguments of those devices.

A matrix names profiles under ``machines:`` (see docs/matrix.md); the host runner resolves one into a
:class:`MachineSpec` (paths inside the container) and the driver turns it into argv with
:func:`device_args`. ``minimal`` is today's machine: the firmware guest on one vCPU, ``-nodefaults``, no
devices; its cells keep their ids. Standard library only (runs in the scenario container).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from harness.live.errors import SpecError

MINIMAL = "minimal"
GUESTS = ("firmware", "linux")
MEMORY = ("auto", "memfd", "file")  # auto: what the mode needs (plain -m, memfd, or a /dev/shm file)
FIRMWARES = ("seabios", "ovmf")
DISK_MB = 16
VPORT_NAME = "org.cpr-harness.0"
GUEST_MAC = "52:54:00:12:34:56"

# Every device a profile may name, and what it adds. Disks, NIC and ports are what the Linux guest's
# workload uses; a display is there for its video memory (device-memory check).
DEVICES: dict[str, str] = {
    "virtio-blk-raw": f"a {DISK_MB} MiB raw image on virtio-blk-pci (the guest writes checksummed records)",
    "virtio-blk-qcow2": f"a {DISK_MB} MiB qcow2 image on virtio-blk-pci (the same records)",
    "virtio-net": "virtio-net-pci on a stream netdev to the harness's peer (one TCP stream)",
    "virtio-serial": "virtio-serial-pci with one port (the guest mirrors its counter there)",
    "virtio-rng": "virtio-rng-pci (the guest's self-check reads it)",
    "std-vga": "the standard VGA (PCI, 16 MiB video memory)",
    "virtio-vga": "virtio-vga (PCI, video memory)",
    "qxl-vga": "qxl-vga (spice builds only)",
    "display": "qxl-vga where the QEMU has it (spice builds), else the standard VGA",
}
DISPLAY_CHOICES = ("qxl-vga", "VGA")  # what "display" becomes, first the QEMU has
_QEMU_DEVICE = {"std-vga": "VGA", "virtio-vga": "virtio-vga", "qxl-vga": "qxl-vga"}


@dataclass
class MachineSpec:
    """One machine profile as the driver gets it (paths are inside the scenario container)."""

    name: str = MINIMAL
    guest: str = "firmware"
    vcpus: int = 1
    ram_mb: int = 0  # 0: the matrix's settings.guest_ram_mb
    memory: str = "auto"
    firmware: str = "seabios"  # Linux guest only; the firmware guest is its own -bios
    devices: list[str] = field(default_factory=list)
    kernel: str = ""  # Linux guest: the kernel and initramfs (the assembled guest's, or the matrix's)
    initrd: str = ""
    firmware_dir: str = ""  # SeaBIOS, OVMF and ROMs of the assembled guest

    @property
    def linux(self) -> bool:
        return self.guest == "linux"

    @property
    def disks(self) -> list[str]:
        """The disk devices, in the order the guest sees them (vda, vdb, ...)."""
        return [d for d in self.devices if d.startswith("virtio-blk-")]

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: object) -> Self:
        if not isinstance(d, dict):
            raise SpecError("machine must be a JSON object")
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise SpecError(f"unknown machine key(s): {', '.join(sorted(set(d) - known))}")
        m = cls(**d)
        problems = []
        if m.guest not in GUESTS:
            problems.append(f"guest {m.guest!r} is not one of {', '.join(GUESTS)}")
        if m.memory not in MEMORY:
            problems.append(f"memory {m.memory!r} is not one of {', '.join(MEMORY)}")
        if m.firmware not in FIRMWARES:
            problems.append(f"firmware {m.firmware!r} is not one of {', '.join(FIRMWARES)}")
        if not isinstance(m.vcpus, int) or not 1 <= m.vcpus <= 64 or not isinstance(m.ram_mb, int):
            problems.append("vcpus must be an integer in [1, 64] and ram_mb an integer")
        if not isinstance(m.devices, list) or any(x not in DEVICES for x in m.devices):
            problems.append(f"devices must be a list of: {', '.join(DEVICES)}")
        if m.linux and not (m.kernel and m.initrd and m.firmware_dir):
            problems.append("a Linux guest needs kernel, initrd and firmware_dir")
        if problems:
            raise SpecError(f"machine {m.name!r}: " + "; ".join(problems))
        return m


@dataclass
class DevicePaths:
    """Where one scenario keeps what its devices use (shared by the source and destination QEMU)."""

    run_dir: Path  # disk images, sockets (private to the scenario)
    work: Path  # logs copied into the result
    ovmf_vars: Path
    other_disk: bool = False  # test fault swap_disk: the first disk is another image
    other_net: bool = False  # test fault swap_netdev: the NIC is wired to another peer

    def disk(self, index: int, kind: str) -> Path:
        return self.run_dir / f"{'other-' if self.other_disk and index == 0 else ''}disk{index}.{kind}"

    @property
    def console_socket(self) -> Path:
        return self.run_dir / "console.sock"

    @property
    def net_socket(self) -> Path:
        return self.run_dir / ("other-net.sock" if self.other_net else "net.sock")

    @property
    def vport_log(self) -> Path:
        return self.work / "vport.log"


def _opt(value: str | Path) -> str:
    return str(value).replace(",", ",,")


def display_device(available: set[str]) -> str:
    """The QEMU device ``display`` stands for, given the device models the QEMU has."""
    return next((d for d in DISPLAY_CHOICES if d in available), DISPLAY_CHOICES[-1])


def qemu_device(name: str, available: set[str]) -> str | None:
    """The QEMU device model a catalogue device needs (None: built from several, always present)."""
    if name == "display":
        return display_device(available)
    return _QEMU_DEVICE.get(name)


def firmware_args(m: MachineSpec, paths: DevicePaths, default: Path) -> list[str]:
    """``-bios`` (firmware guest, SeaBIOS) or the two OVMF flash drives."""
    if not m.linux:
        return ["-bios", str(default)]
    fw = Path(m.firmware_dir)
    if m.firmware == "ovmf":
        code = fw / "OVMF_CODE_4M.fd"
        return [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(code)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={_opt(paths.ovmf_vars)}",
        ]  # fmt: skip
    return ["-bios", str(fw / "bios-256k.bin")]


def device_args(m: MachineSpec, paths: DevicePaths, available: set[str], append: str) -> list[str]:
    """The argv of the profile's devices (after the harness's own serial port, COM1); ``append`` is the
    Linux guest's kernel command line."""
    args = ["-smp", str(m.vcpus)] if m.vcpus > 1 else []
    if not m.linux:
        return args
    # COM2: the kernel console out, commands in; a socket the harness listens on
    args += [
        "-chardev",
        f"socket,id=console0,path={_opt(paths.console_socket)}",
        "-serial",
        "chardev:console0",
    ]
    args += ["-kernel", m.kernel, "-initrd", m.initrd, "-append", append]
    disks = 0
    for name in m.devices:
        if name.startswith("virtio-blk-"):
            kind = name.removeprefix("virtio-blk-")
            image = paths.disk(disks, kind)
            args += ["-blockdev", f"driver=file,node-name=file{disks},filename={_opt(image)}",
                     "-blockdev", f"driver={kind},node-name=disk{disks},file=file{disks}",
                     "-device", f"virtio-blk-pci,drive=disk{disks},id=vd{disks}"]  # fmt: skip
            disks += 1
        elif name == "virtio-net":
            netdev = f"stream,id=net0,server=off,addr.type=unix,addr.path={_opt(paths.net_socket)}"
            nic = f"virtio-net-pci,netdev=net0,mac={GUEST_MAC},romfile=,id=nic0"
            args += ["-netdev", netdev, "-device", nic]
        elif name == "virtio-serial":
            args += ["-device", "virtio-serial-pci,id=vser0",
                     "-chardev", f"file,id=vport0,path={_opt(paths.vport_log)},append=on",
                     "-device", f"virtserialport,chardev=vport0,name={VPORT_NAME},id=vport0"]  # fmt: skip
        elif name == "virtio-rng":
            args += ["-device", "virtio-rng-pci,id=rng0"]
        else:
            args += ["-device", f"{qemu_device(name, available)},id=display0"]
    return args


_NEEDS: dict[str, tuple[str, ...]] = {
    "virtio-blk-raw": ("virtio-blk-pci",),
    "virtio-blk-qcow2": ("virtio-blk-pci",),
    "virtio-net": ("virtio-net-pci",),
    "virtio-serial": ("virtio-serial-pci", "virtserialport"),
    "virtio-rng": ("virtio-rng-pci",),
}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def device_models(binary: str) -> set[str]:
    """The device models ``binary`` has (``-device help``)."""
    return set(re.findall(r'^name "([^"]+)"', _run([binary, "-device", "help"]).stdout, re.MULTILINE))


def needed_models(m: MachineSpec, available: set[str]) -> list[str]:
    """The QEMU device models profile ``m`` needs (``display`` chosen from ``available``)."""
    models = [x for name in m.devices for x in (*_NEEDS.get(name, ()), qemu_device(name, available)) if x]
    return list(dict.fromkeys(models))


def lacking(binary: str, m: MachineSpec, models: list[str]) -> str:
    """What ``binary`` lacks of ``models`` and of what profile ``m`` needs otherwise, in QEMU's own words
    ("" when nothing)."""
    available = device_models(binary)
    problems = []
    for model in models:
        if model not in available:
            proc = _run([binary, "-device", f"{model},help"])
            said = (proc.stderr or proc.stdout).strip().splitlines()
            problems.append(said[-1] if said else f"no device model {model!r}")
    if "virtio-net" in m.devices:
        netdevs = _run([binary, "-netdev", "help"]).stdout.split()
        if "stream" not in netdevs:
            problems.append(f"no stream netdev (-netdev help: {' '.join(netdevs) or '(nothing)'})")
    return "; ".join(problems)
