"""The Linux guest's protocol: what the harness tells it (kernel command line) and reads from it (COM1),
and its init script, which must read the same parameters."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness.live.guest import FIRMWARE_LAYOUT, linux

SELF_CHECK_LOG = """\
CPRGUEST BOOT 87bfe67f
CPRINFO kernel=6.12.117+deb13-cloud-amd64
CPRINFO acpi-rsdp=0xF52C0
CPRINFO disks=vda,vdb
CPRGUEST N=1
CPRGUEST N=2
CPRSELF DISK vda written=8 verified=8 bad= io-errors=0
CPRSELF DISK vdb written=8 verified=7 bad=3 io-errors=0
CPRSELF NET sent=21 nc-exit=0 ended=asked
CPRSELF RNG current=virtio_rng.0 bytes=16
CPRSELF VPORT written=16
CPRSELF VERDICT FAIL token=4eb74544
CPRGUEST N=3
"""


def test_the_command_line_reserves_the_layout() -> None:
    line = linux.kernel_cmdline()
    lay = linux.LINUX_LAYOUT
    m = re.search(r"memmap=(\d+)K\$(0x[0-9a-f]+)", line)
    assert m is not None
    start, size = int(m.group(2), 16), int(m.group(1)) * 1024
    for addr, length in ((lay.counter_addr, 16), (lay.pattern_addr, lay.pattern_len)):
        assert start <= addr and addr + length <= start + size
    assert start + size <= 0x100000  # below 1 MiB: /dev/mem may write it under STRICT_DEVMEM
    assert lay.pattern_addr % lay.pattern_len == 0  # init.sh writes it with dd seek=pat/patlen
    assert "console=ttyS1" in line and f"cprguest.ctr={lay.counter_addr:#x}" in line
    assert lay.magic == FIRMWARE_LAYOUT.magic


def test_init_reads_every_parameter_the_harness_passes() -> None:
    init = linux.INIT_SCRIPT.read_text()
    for key in re.findall(r"cprguest\.(\w+)=", linux.kernel_cmdline()):
        assert f"param {key} " in init, key
    assert init.startswith("#!/bin/busybox sh")
    assert "CPRGUEST BOOT" in init and "CPRGUEST N=" in init and "CPRSELF VERDICT" in init


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_init_is_valid_shell() -> None:
    proc = subprocess.run(["sh", "-n", str(linux.INIT_SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_self_check_lines_are_parsed() -> None:
    sc = linux.self_check(SELF_CHECK_LOG, "4eb74544")
    assert sc is not None and sc.verdict == "FAIL" and sc.line == "CPRSELF VERDICT FAIL token=4eb74544"
    assert sc.disks["vda"] == {"written": "8", "verified": "8", "bad": "", "io-errors": "0"}
    assert sc.disks["vdb"]["bad"] == "3"
    assert sc.net == {"sent": "21", "nc-exit": "0", "ended": "asked"}
    assert sc.rng == {"current": "virtio_rng.0", "bytes": "16"} and sc.vport == {"written": "16"}
    assert linux.self_check(SELF_CHECK_LOG, "00000000") is None


def test_only_the_lines_of_the_asked_self_check_count() -> None:
    log = (
        SELF_CHECK_LOG
        + "CPRSELF DISK vda written=9 verified=9 bad= io-errors=0\nCPRSELF VERDICT PASS token=t2\n"
    )
    second = linux.self_check(log, "t2")
    assert second is not None and second.verdict == "PASS" and list(second.disks) == ["vda"]
    assert second.net is None


def test_boot_id_info_and_vport() -> None:
    assert linux.boot_id(SELF_CHECK_LOG) == "87bfe67f" and linux.boot_id("") == ""
    info = linux.info(SELF_CHECK_LOG)
    assert info["acpi-rsdp"] == "0xF52C0" and info["disks"] == "vda,vdb"
    assert linux.vport_counters("CPRVPORT N=1\nCPRVPORT N=2\nCPRVPORT N=3") == [1, 2]  # last line unfinished
