"""The Linux guest's disk images: created empty for a scenario (raw, or qcow2 without ``qemu-img``), and
read back afterwards by the harness itself, independently of what the guest says.

The guest writes record ``n`` at sector ``n`` of each disk: ``cprdisk <vdX> <n> <boot id> <uptime>
<crc32>`` and a newline, zero-padded to 512 bytes, where ``crc32`` is the CRC-32 (zlib's, as busybox's
``crc32`` prints it: 8 hex digits) of the text before it. :func:`scan` returns every record of an
image in order, each verified.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
_L2_BITS = CLUSTER_BITS - 3
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
QCOW2_MAGIC = b"QFI\xfb"
_HEX8 = re.compile(r"[0-9a-f]{8}")


def create(path: Path, kind: str, size: int) -> None:
    """An empty ``raw`` (sparse) or ``qcow2`` (version 3, 64 KiB clusters) image of ``size`` bytes."""
    with path.open("wb") as f:
        if kind == "raw":
            f.truncate(size)
            return
        if kind != "qcow2":
            raise ValueError(f"image kind {kind!r} is not raw or qcow2")
        l1_size = -(-size // (CLUSTER << _L2_BITS))
        # cluster 0 header, 1 refcount table, 2 refcount block, 3 L1 table
        header = struct.pack(
            ">4sIQIIQIIQQIIQQQQII",
            QCOW2_MAGIC, 3, 0, 0, CLUSTER_BITS, size, 0, l1_size, 3 * CLUSTER, CLUSTER, 1, 0, 0,
            0, 0, 0, 4, 104,
        )  # fmt: skip
        f.write(header)
        f.seek(CLUSTER)
        f.write(struct.pack(">Q", 2 * CLUSTER))
        f.seek(2 * CLUSTER)
        f.write(struct.pack(">4H", 1, 1, 1, 1))
        f.truncate(4 * CLUSTER)


class Image:
    """Read guest-visible bytes of a raw or qcow2 image (qcow2: no backing file, no compression)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.qcow2 = self.data[:4] == QCOW2_MAGIC
        if self.qcow2:
            bits, size, l1_size, l1_off = struct.unpack(">I Q 4x I Q", self.data[20:48])
            if bits != CLUSTER_BITS:
                raise ValueError(f"{path}: cluster_bits {bits}, expected {CLUSTER_BITS}")
            self.size = size
            self.l1 = struct.unpack(f">{l1_size}Q", self.data[l1_off : l1_off + 8 * l1_size])
        else:
            self.size = len(self.data)

    def host_offset(self, offset: int) -> int | None:
        """Where guest offset ``offset`` is in the file (None: unallocated, reads as zeros)."""
        if not self.qcow2:
            return offset
        l1_index = offset >> (CLUSTER_BITS + _L2_BITS)
        l2_index = (offset >> CLUSTER_BITS) & ((1 << _L2_BITS) - 1)
        l2_table = self.l1[l1_index] & _OFFSET_MASK if l1_index < len(self.l1) else 0
        if not l2_table:
            return None
        entry = struct.unpack(">Q", self.data[l2_table + 8 * l2_index : l2_table + 8 * l2_index + 8])[0]
        if entry & (1 << 62):
            raise ValueError(f"{self.path}: compressed cluster at {offset:#x}")
        cluster = entry & _OFFSET_MASK
        return None if not cluster or entry & 1 else cluster + (offset & (CLUSTER - 1))

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at guest offset ``offset`` (within one cluster); unallocated reads as zeros."""
        at = self.host_offset(offset)
        return b"\0" * length if at is None else self.data[at : at + length].ljust(length, b"\0")


@dataclass
class Record:
    index: int  # the sector it was read from
    disk: str
    number: int
    boot_id: str
    ok: bool
    problem: str = ""


def parse_record(index: int, sector: bytes) -> Record | None:
    """The record in one sector (None: an empty sector); a damaged one has ``ok`` False."""
    if not sector.strip(b"\0"):
        return None
    text = sector.split(b"\n", 1)[0].decode("ascii", "replace")
    words = text.split()
    if len(words) != 6 or words[0] != "cprdisk" or not words[2].isdigit() or not _HEX8.fullmatch(words[5]):
        return Record(index, "?", -1, "", False, f"sector {index}: not a record: {text[:60]!r}")
    disk, number, boot_id, summed = words[1], int(words[2]), words[3], int(words[5], 16)
    rec = Record(index, disk, number, boot_id, True)
    if zlib.crc32(" ".join(words[:5]).encode()) != summed:
        rec.ok, rec.problem = False, f"sector {index}: checksum mismatch in {text[:60]!r}"
    elif number != index:
        rec.ok, rec.problem = False, f"sector {index}: holds record {number}"
    elif sector[len(text) + 1 :].strip(b"\0"):
        rec.ok, rec.problem = False, f"sector {index}: bytes after the record"
    return rec


def scan(path: Path, limit: int = 100_000) -> list[Record]:
    """Every record of the image at ``path``, from sector 0 to the first empty sector."""
    image = Image(path)
    records = []
    for index in range(min(limit, image.size // SECTOR)):
        rec = parse_record(index, image.read(index * SECTOR, SECTOR))
        if rec is None:
            break
        records.append(rec)
    return records


def damage_record(path: Path, index: int) -> str:
    """Test fault: invert the first 32 bytes of the record in sector ``index`` of the image (in place)."""
    at = Image(path).host_offset(index * SECTOR)
    if at is None:
        raise ValueError(f"{path}: sector {index} holds no record yet")
    with path.open("r+b") as f:
        f.seek(at)
        old = f.read(32)
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in old))
        f.flush()
        os.fsync(f.fileno())
    return f"{path.name} sector {index} (file offset {at:#x})"
