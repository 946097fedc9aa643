"""The test guest: constants agree with the assembly source, the pattern model, a real build."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, image_tag

from harness.live import guest


def _defines() -> dict[str, int]:
    text = guest.SOURCE.read_text()
    return {m[1]: int(m[2], 0) for m in re.finditer(r"^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)", text, re.M)}


def test_constants_match_the_assembly_source():
    d = _defines()
    for name in ("COUNTER_ADDR", "BOOTID_ADDR", "INTERVAL_ADDR", "MAGIC_ADDR", "PATTERN_ADDR", "PATTERN_LEN",
                 "PATTERN_SEED"):  # fmt: skip
        assert d[name] == getattr(guest, name), name
    assert f"${guest.MAGIC:#x}" in guest.SOURCE.read_text().lower()


def test_regions_do_not_overlap_and_fit_the_smallest_guest():
    counter_block = range(guest.COUNTER_ADDR, guest.MAGIC_ADDR + 4)
    pattern = range(guest.PATTERN_ADDR, guest.PATTERN_ADDR + guest.PATTERN_LEN)
    assert not set(counter_block) & {pattern.start, pattern.stop - 1}
    assert counter_block.stop <= pattern.start
    assert pattern.stop <= 32 * 1024 * 1024  # well inside any guest the harness starts


def test_expected_pattern_is_xorshift32():
    p = guest.expected_pattern()
    assert len(p) == guest.PATTERN_LEN
    x = guest.PATTERN_SEED
    for i in range(4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        assert int.from_bytes(p[4 * i : 4 * i + 4], "little") == x
    assert len(set(p[:4096])) > 200  # not a trivial fill


def test_expected_digest_matches_an_independent_model_of_the_guest():
    """The digest the checks compare with: recomputed here word by word, as guest.S writes it."""
    words, x = [], guest.PATTERN_SEED
    for _ in range(guest.PATTERN_LEN // 4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        words.append(x)
    model = struct.pack(f"<{len(words)}I", *words)
    assert guest.expected_pattern_sha256() == hashlib.sha256(model).hexdigest()


def _check_image(image: bytes) -> None:
    assert len(image) == guest.FIRMWARE_SIZE
    assert image[0xFFF0] == 0xEA  # far jmp at the reset vector
    assert int.from_bytes(image[0xFFF3:0xFFF5], "little") == 0xF000
    assert b"CPRGUEST BOOT " in image and b"CPRGUEST N=" in image


def test_build_firmware_on_this_host(tmp_path):
    if not shutil.which("gcc") or not shutil.which("ld"):
        pytest.skip("no gcc/ld on this host")
    try:
        path = guest.build_firmware(tmp_path)
    except RuntimeError as exc:
        pytest.skip(f"host toolchain cannot build 32-bit code: {exc}")
    _check_image(path.read_bytes())
    assert guest.build_firmware(tmp_path) == path  # cached by source hash
    assert len(list(tmp_path.iterdir())) == 1


def _docker_ok() -> bool:
    if not shutil.which("docker"):
        return False
    return (
        subprocess.run(
            ["docker", "image", "inspect", image_tag("qemu-trixie-backports")],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


@pytest.mark.docker
def test_build_firmware_in_the_run_image(tmp_path):
    if not _docker_ok():
        pytest.skip(f"no Docker engine or no image {image_tag('qemu-trixie-backports')}")
    code = "from pathlib import Path; from harness.live import guest; print(guest.build_firmware(Path('/w')))"
    proc = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{REPO}/harness/live:/opt/cpr-harness/harness/live:ro",
         "-v", f"{tmp_path}:/w",
         "-e", "PYTHONPATH=/opt/cpr-harness", "-e", "PYTHONDONTWRITEBYTECODE=1",
         image_tag("qemu-trixie-backports"), "python3", "-c", code],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    built = Path(proc.stdout.strip())
    _check_image((tmp_path / built.name).read_bytes())
