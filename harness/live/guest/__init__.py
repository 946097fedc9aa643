"""The test guest: a 64 KiB flat firmware image (``-bios``) that proves continuity without a disk.

Protocol (shared with :mod:`harness.checks`): the guest prints ``CPRGUEST BOOT <hex id>`` once to COM1,
fills ``[PATTERN_ADDR, PATTERN_ADDR + PATTERN_LEN)`` once with a xorshift32 stream, then forever increments
the u32 at ``COUNTER_ADDR`` about every 0.1 s and prints ``CPRGUEST N=<decimal>``. The addresses below must
match ``guest.S``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

COUNTER_ADDR = 0x0010_0000  # u32, incremented every ~0.1 s
BOOTID_ADDR = 0x0010_0004  # u32, low TSC bits at boot (the id in the boot marker)
INTERVAL_ADDR = 0x0010_0008  # u32, calibrated TSC ticks per tick
MAGIC_ADDR = 0x0010_000C  # u32 MAGIC once the pattern is written and the counter loop runs
MAGIC = 0x4752_5043  # b"CPRG" little endian
PATTERN_ADDR = 0x0020_0000
PATTERN_LEN = 0x0010_0000
PATTERN_SEED = 0x2545_F491
TICK_S = 0.1
BOOT_MARKER = "CPRGUEST BOOT"
COUNTER_PREFIX = "CPRGUEST N="
FIRMWARE_SIZE = 64 * 1024
LINK_ADDR = 0xF0000  # the image's low alias; its last 16 bytes hold the reset vector

SOURCE = Path(__file__).with_name("guest.S")


@dataclass(frozen=True)
class Layout:
    """Where a guest keeps what the harness reads over QMP: its counter, the magic it writes once running,
    and a pattern region written once at boot (the Linux guest's differ from the firmware guest's)."""

    counter_addr: int
    magic_addr: int
    magic: int
    pattern_addr: int
    pattern_len: int


FIRMWARE_LAYOUT = Layout(COUNTER_ADDR, MAGIC_ADDR, MAGIC, PATTERN_ADDR, PATTERN_LEN)


def expected_pattern() -> bytes:
    """The bytes the guest writes to the pattern region (xorshift32, little endian)."""
    out = bytearray(PATTERN_LEN)
    x = PATTERN_SEED
    for off in range(0, PATTERN_LEN, 4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[off : off + 4] = x.to_bytes(4, "little")
    return bytes(out)


def expected_pattern_sha256() -> str:
    return hashlib.sha256(expected_pattern()).hexdigest()


def build_firmware(out_dir: Path) -> Path:
    """Assemble ``guest.S`` into ``out_dir/cprguest-<hash>.bin`` (cached by source hash) and return its path.

    Needs gcc (with 32-bit support in the assembler) and binutils' ld; takes well under a second.
    """
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    out_dir.mkdir(parents=True, exist_ok=True)
    image = out_dir / f"cprguest-{digest}.bin"
    if image.is_file() and image.stat().st_size == FIRMWARE_SIZE:
        return image
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".guest-build-") as tmp:
        obj = Path(tmp) / "guest.o"
        raw = Path(tmp) / "guest.bin"
        _run(["gcc", "-m32", "-c", "-o", str(obj), str(SOURCE)])
        _run(
            ["ld", "-m", "elf_i386", f"-Ttext={LINK_ADDR:#x}", "--oformat", "binary", "-nostdlib",
             "--build-id=none", "-z", "noexecstack", "-e", "start16", "-o", str(raw), str(obj)]
        )  # fmt: skip
        size = raw.stat().st_size
        if size != FIRMWARE_SIZE:
            raise RuntimeError(f"guest firmware is {size} bytes, expected {FIRMWARE_SIZE}")
        os.replace(raw, image)
    return image


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
