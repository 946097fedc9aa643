"""The Linux test guest: Debian's kernel and a busybox initramfs whose ``/init`` (``init.sh``) runs the
workload, and the serial protocol the harness reads from it.

The guest speaks the firmware guest's protocol on COM1 (``CPRGUEST BOOT <id>``, ``CPRGUEST N=<n>``,
a counter and a pattern in RAM at the addresses of :data:`LINUX_LAYOUT`), so every continuity check
works unchanged. It adds ``CPRINFO <key>=<value>`` facts at boot and, when the harness writes
``CHECK <token>`` to COM2 after the switch, ``CPRSELF`` lines ending in ``CPRSELF VERDICT PASS|FAIL
token=<token>``: its own read-back of everything it wrote. Nothing here trusts those lines beyond
parsing them: they are what the guest says, shown and checked as such.

The counter page and the pattern live in a range the kernel is told to reserve (``memmap=``) below 1 MiB,
which ``/dev/mem`` may write under ``STRICT_DEVMEM`` and no firmware or loader uses after boot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.live.guest import MAGIC, Layout

RESERVED_ADDR, RESERVED_LEN = 0x60000, 0x20000
LINUX_LAYOUT = Layout(
    counter_addr=0x70000, magic_addr=0x7000C, magic=MAGIC, pattern_addr=0x60000, pattern_len=0x10000
)
INIT_SCRIPT = Path(__file__).with_name("init.sh")
MODULES = ("virtio_blk", "virtio_net", "virtio-rng")  # what the cloud kernel has as modules, not built in
PEER = "10.0.2.2:7777"
GUEST_NET = "10.0.2.15/24"
VPORT_PREFIX = "CPRVPORT N="
_PAIR = re.compile(r"([\w-]+)=(\S*)")


def kernel_cmdline(extra: tuple[str, ...] = ()) -> str:
    """The kernel command line: console on COM2, the reserved range, and the workload's parameters."""
    lay = LINUX_LAYOUT
    words = [
        "console=ttyS1",
        "nokaslr",
        f"memmap={RESERVED_LEN // 1024}K${RESERVED_ADDR:#x}",
        f"cprguest.ctr={lay.counter_addr:#x}",
        f"cprguest.pat={lay.pattern_addr:#x}",
        f"cprguest.patlen={lay.pattern_len}",
        f"cprguest.net={GUEST_NET}",
        f"cprguest.peer={PEER}",
        "vt.global_cursor_default=0",  # no blinking cursor drawn into video memory
        *extra,
    ]
    return " ".join(words)


def pairs(text: str) -> dict[str, str]:
    return dict(_PAIR.findall(text))


def boot_id(serial_log: str) -> str:
    """The id in the guest's first boot marker ("" when there is none)."""
    m = re.search(r"CPRGUEST BOOT (\w+)", serial_log)
    return m.group(1) if m else ""


def info(serial_log: str) -> dict[str, str]:
    """The guest's ``CPRINFO`` facts (first value of each key)."""
    found: dict[str, str] = {}
    for line in serial_log.splitlines():
        if line.startswith("CPRINFO "):
            for k, v in pairs(line).items():
                found.setdefault(k, v)
    return found


@dataclass
class SelfCheck:
    """What the guest reported after the switch (``CPRSELF`` lines of one token)."""

    verdict: str  # PASS | FAIL (the guest's own), "" when the verdict line is missing
    line: str  # the verdict line as written
    disks: dict[str, dict[str, str]] = field(default_factory=dict)  # vda -> {written, verified, ...}
    net: dict[str, str] | None = None
    rng: dict[str, str] | None = None
    vport: dict[str, str] | None = None


def self_check(serial_log: str, token: str) -> SelfCheck | None:
    """The self-check answering ``token``: the ``CPRSELF`` lines just before its verdict line (None when
    the guest never printed anything for it)."""
    lines = [ln.strip() for ln in serial_log.splitlines()]
    end = next(
        (i for i, ln in enumerate(lines) if ln.startswith("CPRSELF VERDICT") and f"token={token}" in ln), None
    )
    if end is None:
        return None
    start = end
    while start > 0 and lines[start - 1].startswith("CPRSELF ") and "VERDICT" not in lines[start - 1]:
        start -= 1
    verdict_words = lines[end].split()
    sc = SelfCheck(verdict_words[2] if len(verdict_words) > 2 else "", lines[end])
    for ln in lines[start:end]:
        words = ln.split()
        kind = words[1] if len(words) > 1 else ""
        if kind == "DISK" and len(words) > 2:
            sc.disks[words[2]] = pairs(ln)
        elif kind == "NET":
            sc.net = pairs(ln)
        elif kind == "RNG":
            sc.rng = pairs(ln)
        elif kind == "VPORT":
            sc.vport = pairs(ln)
    return sc


def vport_counters(text: str) -> list[int]:
    """The counter values the guest mirrored on its virtio-serial port, in order."""
    return [int(m) for m in re.findall(rf"{VPORT_PREFIX}(\d+)\n", text)]
