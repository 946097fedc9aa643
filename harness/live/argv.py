"""A QEMU command line for the test guest: what :class:`VmConfig` asks for, as an argv list.

Also the guard against arguments QEMU would silently mishandle (:func:`find_stray_arguments`) and the
versioned machine type an upgrade must keep (:func:`versioned_machine`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

RAM_KINDS = ("plain", "memfd", "file")
# QEMU options that take no value; every other option consumes the next argument (see find_stray_arguments).
FLAG_OPTIONS = frozenset(
    ["-nodefaults", "-S", "-no-reboot", "-no-shutdown", "-enable-kvm", "-snapshot", "-nographic",
     "-no-user-config", "-s", "-daemonize", "-full-screen", "-no-hpet", "-no-acpi", "-only-migratable",
     "-preconfig", "-version", "-help", "-h", "-win2k-hack"]
)  # fmt: skip


@dataclass
class VmConfig:
    """What one QEMU needs; :func:`build_argv` turns it into an argv."""

    binary: str
    firmware: Path
    serial_log: Path
    qmp_socket: Path
    ram_mb: int = 256
    accel: str = "tcg"
    machine: str = "q35"  # an upgrade pins the source's versioned type, e.g. pc-q35-10.0
    ram: str = "plain"  # plain: -m only; memfd: shared memfd + aux-ram-share; file: shared named file
    mem_path: Path | None = None  # ram == "file"
    aux_ram_share: bool = True  # memfd RAM: -machine aux-ram-share=on (QEMU >= 10.0 has the option)
    file_aux: bool = False  # file RAM in cpr-transfer/cpr-exec (a machine profile's memory: file): the same
    data_dirs: list[str] = field(default_factory=list)
    default_devices: bool = False
    incoming: list[str] = field(default_factory=list)  # one "-incoming" per entry
    extra_args: list[str] = field(default_factory=list)  # appended verbatim (test faults)
    firmware_args: list[str] | None = None  # instead of -bios firmware (a machine profile's firmware)
    machine_args: list[str] = field(default_factory=list)  # a machine profile's devices (after COM1)


def versioned_machine(binary: str, alias: str = "q35") -> str:
    """The versioned machine type ``alias`` stands for in ``binary`` (``q35`` -> ``pc-q35-10.0``).

    Live update to a newer QEMU must keep the source's machine type: the destination's ``q35`` may be a
    newer, incompatible one. Falls back to ``alias`` when the binary does not say."""
    proc = subprocess.run([binary, "-machine", "help"], capture_output=True, text=True, timeout=30)
    for line in proc.stdout.splitlines():
        match = re.match(rf"^{re.escape(alias)}\s.*\(alias of (\S+)\)", line)
        if match:
            return match.group(1)
    return alias


def _opt(value: str | Path) -> str:
    """Escape a value inside a QEMU ``key=value,...`` option (a comma is written twice)."""
    return str(value).replace(",", ",,")


def build_argv(cfg: VmConfig) -> list[str]:
    if cfg.ram not in RAM_KINDS:
        raise ValueError(f"ram kind {cfg.ram!r} not one of {RAM_KINDS}")
    size = f"{cfg.ram_mb}M"
    machine = cfg.machine
    argv = [cfg.binary, "-name", "cprguest"]
    if cfg.ram == "memfd":
        machine += ",memory-backend=ram0" + (",aux-ram-share=on" if cfg.aux_ram_share else "")
        backend = f"memory-backend-memfd,id=ram0,size={size},share=on"
    elif cfg.ram == "file":
        if cfg.mem_path is None:
            raise ValueError("ram kind 'file' needs mem_path")
        aux = cfg.aux_ram_share and cfg.file_aux
        machine += ",memory-backend=ram0" + (",aux-ram-share=on" if aux else "")
        backend = f"memory-backend-file,id=ram0,size={size},mem-path={_opt(cfg.mem_path)},share=on"
    argv += ["-machine", machine, "-accel", cfg.accel, "-m", size]
    if cfg.ram != "plain":
        argv += ["-object", backend]
    if not cfg.default_devices:
        argv.append("-nodefaults")
    firmware = ["-bios", str(cfg.firmware)] if cfg.firmware_args is None else cfg.firmware_args
    argv += ["-display", "none", *firmware]
    argv += [
        "-chardev",
        f"file,id=serial0,path={_opt(cfg.serial_log)},append=on",
        "-serial",
        "chardev:serial0",
        *cfg.machine_args,
    ]
    argv += ["-qmp", f"unix:{_opt(cfg.qmp_socket)},server=on,wait=off"]
    for d in cfg.data_dirs:
        argv += ["-L", d]
    for inc in cfg.incoming:
        argv += ["-incoming", inc]
    return argv + list(cfg.extra_args)


def find_stray_arguments(argv: list[str]) -> list[str]:
    """Arguments QEMU would mishandle silently: empty strings and positionals (taken as ``-hda``)."""
    problems = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "":
            problems.append(f"argument {i} is an empty string (QEMU takes it as an empty -hda drive)")
        elif arg.startswith("-"):
            if arg.lstrip("-") and "-" + arg.lstrip("-") not in FLAG_OPTIONS:
                i += 1  # the option's value
        else:
            problems.append(f"argument {i} {arg!r} is positional (QEMU takes it as -hda, adding an ide-hd)")
        i += 1
    return problems
