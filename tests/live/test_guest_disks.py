"""The Linux guest's disk images: created as raw or qcow2, read back record by record, damaged on purpose.

Records are written here the way the guest's init writes them (text, crc32 as busybox prints it, zero
padding to 512 bytes); into a qcow2 image through a minimal allocating writer (the images QEMU itself
writes are read by the real-QEMU tests)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from harness.live.guest.disks import CLUSTER, SECTOR, Image, create, damage_record, parse_record, scan


def record(disk: str, n: int, boot: str = "ab12cd34", uptime: str = "5.12") -> bytes:
    text = f"cprdisk {disk} {n} {boot} {uptime}"
    return f"{text} {zlib.crc32(text.encode()):08x}\n".encode().ljust(SECTOR, b"\0")


def write_raw(path: Path, sectors: list[bytes]) -> None:
    with path.open("r+b") as f:
        for i, data in enumerate(sectors):
            f.seek(i * SECTOR)
            f.write(data)


def write_qcow2(path: Path, sectors: list[bytes]) -> None:
    """Allocate the first cluster (an L2 table at cluster 4, data at cluster 5) and write ``sectors``."""
    with path.open("r+b") as f:
        l1_offset = struct.unpack(">Q", (f.seek(40), f.read(8))[1])[0]
        f.seek(l1_offset)
        f.write(struct.pack(">Q", (4 * CLUSTER) | (1 << 63)))
        f.seek(4 * CLUSTER)
        f.write(struct.pack(">Q", (5 * CLUSTER) | (1 << 63)))
        f.seek(5 * CLUSTER)
        f.write(b"".join(sectors).ljust(CLUSTER, b"\0"))


@pytest.mark.parametrize("kind", ["raw", "qcow2"])
def test_records_read_back_and_one_damaged(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"d.{kind}"
    create(path, kind, 16 << 20)
    recs = [record("vda", n) for n in range(5)]
    (write_raw if kind == "raw" else write_qcow2)(path, recs)
    found = scan(path)
    assert [(r.disk, r.number, r.boot_id, r.ok) for r in found] == [
        ("vda", n, "ab12cd34", True) for n in range(5)
    ]
    where = damage_record(path, 1)
    assert "sector 1" in where
    after = scan(path)
    assert len(after) == 5 and [r.ok for r in after] == [True, False, True, True, True]
    assert "not a record" in after[1].problem


def test_a_fresh_qcow2_image_is_what_qemu_img_makes(tmp_path: Path) -> None:
    path = tmp_path / "d.qcow2"
    create(path, "qcow2", 16 << 20)
    data = path.read_bytes()
    assert len(data) == 4 * CLUSTER and data[:4] == b"QFI\xfb"
    version, _, _, bits, size = struct.unpack(">IQIIQ", data[4:32])
    assert (version, bits, size) == (3, 16, 16 << 20)
    assert struct.unpack(">II", data[96:104]) == (4, 104)  # refcount order, header length
    assert struct.unpack(">4H", data[2 * CLUSTER : 2 * CLUSTER + 8]) == (1, 1, 1, 1)
    image = Image(path)
    assert image.size == 16 << 20 and image.read(0, SECTOR) == b"\0" * SECTOR
    assert scan(path) == []


def test_records_that_do_not_belong() -> None:
    good = record("vdb", 3)
    assert parse_record(3, good).ok
    wrong_place = parse_record(4, good)
    assert not wrong_place.ok and "holds record 3" in wrong_place.problem
    edited = good.replace(b"5.12", b"5.13")
    assert "checksum mismatch" in parse_record(3, edited).problem
    trailing = good[:-1] + b"x"
    assert "bytes after the record" in parse_record(3, trailing).problem
    assert parse_record(0, b"\0" * SECTOR) is None
    assert "not a record" in parse_record(0, b"garbage".ljust(SECTOR, b"\0")).problem


def test_scan_stops_at_the_first_empty_sector(tmp_path: Path) -> None:
    path = tmp_path / "d.raw"
    create(path, "raw", 1 << 20)
    write_raw(path, [record("vda", 0), record("vda", 1), b"\0" * SECTOR, record("vda", 3)])
    assert [r.number for r in scan(path)] == [0, 1]


def test_damage_needs_a_written_record(tmp_path: Path) -> None:
    path = tmp_path / "d.qcow2"
    create(path, "qcow2", 1 << 20)
    with pytest.raises(ValueError, match="holds no record"):
        damage_record(path, 1)
    with pytest.raises(ValueError, match="raw or qcow2"):
        create(tmp_path / "d.vmdk", "vmdk", 1 << 20)
