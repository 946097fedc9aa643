"""The Linux guest, assembled in its image and cached by content hash: once, then a cache hit; the same
bytes when assembled again from the same inputs; its provenance; its initramfs as the init expects it."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from harness.build.guest import GUEST_IMAGE, assemble_guest, guest_key
from harness.engine.containers import Engine
from harness.live.guest import linux


def cpio_members(data: bytes) -> dict[str, bytes]:
    """The regular files of a newc cpio archive, by name."""
    out, at = {}, 0
    while True:
        head = data[at : at + 110]
        assert head[:6] == b"070701", head[:6]
        mode, size, namesize = int(head[14:22], 16), int(head[54:62], 16), int(head[94:102], 16)
        name = data[at + 110 : at + 110 + namesize - 1].decode()
        at = (at + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        if mode & 0o170000 == 0o100000:
            out[name.removeprefix("./")] = data[at : at + size]
        at = (at + size + 3) & ~3


@pytest.mark.docker
def test_assembled_once_then_a_cache_hit(tmp_path: Path) -> None:
    engine = Engine.connect(progress=lambda line: None)
    said: list[str] = []
    first = assemble_guest(engine, tmp_path / "a", progress=said.append)
    assert not first.cache_hit and any("assembling the Linux guest" in s for s in said)
    again = assemble_guest(engine, tmp_path / "a", progress=said.append)
    assert again.cache_hit and again.provenance == first.provenance and "cache hit" in said[-1]
    image = engine.ensure_image(GUEST_IMAGE)
    key = guest_key(image.id, linux.INIT_SCRIPT.read_bytes(), linux.MODULES)
    assert first.folder == tmp_path / "a" / "guests" / key[:16] and first.provenance["key"] == key

    p = first.provenance
    assert p["kernel"].endswith("-cloud-amd64") and p["busybox-static"] and p["ovmf"] and p["seabios"]
    assert p["modules"] == "virtio_blk.ko failover.ko net_failover.ko virtio_net.ko virtio-rng.ko"
    assert json.loads((first.folder / "guest.json").read_text()) == p
    for name in ("bios-256k.bin", "vgabios-stdvga.bin", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"):
        assert (first.firmware / name).is_file(), name

    files = cpio_members(gzip.decompress(first.initrd.read_bytes()))
    assert files["init"] == linux.INIT_SCRIPT.read_bytes()
    assert files["lib/modules/load.order"].decode().split() == p["modules"].split()
    assert {"bin/busybox", "lib/modules/virtio_net.ko"} <= set(files)

    other = assemble_guest(engine, tmp_path / "b", progress=said.append)  # same inputs, another cache
    assert not other.cache_hit
    assert other.provenance["initramfs_sha256"] == p["initramfs_sha256"]  # reproducible
    assert other.provenance["kernel_sha256"] == p["kernel_sha256"]


@pytest.mark.parametrize("plant", ["link", "fifo"])
def test_what_the_assembly_container_writes_is_data(tmp_path: Path, plant: str) -> None:
    """A link (the host would follow it when hashing) or a special file in the output is refused."""
    from harness.build.guest import _regular_files_only
    from harness.errors import InfraError

    (tmp_path / "fw").mkdir()
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    _regular_files_only(tmp_path)
    target = tmp_path / "fw" / "OVMF_CODE_4M.fd"
    if plant == "link":
        target.symlink_to("/etc/hostname")
    else:
        os.mkfifo(target)
    with pytest.raises(InfraError, match="not a regular file"):
        _regular_files_only(tmp_path)
