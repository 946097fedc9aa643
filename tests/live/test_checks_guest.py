"""The Linux guest's checks (disk-integrity, net-continuity, guest-health, guest-self-check) and
device-memory: a good run passes them; each seeded problem fails the check meant to catch it."""

from __future__ import annotations

import dataclasses

import pytest
from observations import BOOT_ID, DEVICE_MEMORY, NAMES, T0, by_name, good, good_linux, one

from harness.live.checks import evaluate, figures, verdict_of
from harness.live.guest import linux
from harness.live.guest.disks import Record

LINUX_NAMES = [*NAMES[:-1], "disk-integrity", "net-continuity", "guest-health", "guest-self-check", NAMES[-1]]


def failed(obs) -> set[str]:
    return {c.name for c in evaluate(obs) if c.verdict == "fail"}


@pytest.mark.parametrize("mode", ["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"])
def test_a_good_linux_run_passes_every_check(mode: str) -> None:
    checks = evaluate(good_linux(mode))
    assert [c.name for c in checks] == LINUX_NAMES
    assert verdict_of(checks)[0] == "pass", [c for c in checks if c.verdict == "fail"]


def test_the_firmware_guest_lists_no_linux_check() -> None:
    assert [c.name for c in evaluate(good())] == NAMES
    assert figures(good()) == {}


def test_figures() -> None:
    f = figures(good_linux())
    assert f["disk_records"] == 32 and f["disk_records_intact"] == 32 and f["disk_records_after_switch"] == 16
    assert f["disk_records_verified_by_guest"] == 32 and f["net_lines"] == 80
    assert f["net_gap_switch_ms"] == pytest.approx(300, abs=1) and f["net_gap_max_ms"] >= 300


# ---- disk-integrity ----
def test_a_damaged_record_in_the_image_fails_disk_integrity() -> None:
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.disks[0].records[1] = Record(1, "?", -1, "", False, "sector 1: checksum mismatch in 'cprdisk'")
    c = one(obs, "disk-integrity")
    assert c.verdict == "fail" and "vda (raw image): 1 damaged record(s)" in c.observed


def test_the_guests_own_read_back_counts() -> None:
    obs = good_linux()
    obs.serial_log = obs.serial_log.replace(
        "DISK vdb written=16 verified=16 bad=", "DISK vdb written=16 verified=12 bad=0,1,2,3"
    )
    obs.serial_log = obs.serial_log.replace("VERDICT PASS", "VERDICT FAIL")
    assert obs.guest is not None
    obs.guest.self_check = linux.self_check(obs.serial_log, "t1")
    assert failed(obs) == {"disk-integrity", "guest-self-check"}
    assert (
        "vdb: guest read back 12 of 16 record(s) intact, bad record(s) 0,1,2,3"
        in one(obs, "disk-integrity").observed
    )


def test_an_image_missing_records_the_guest_wrote() -> None:
    """The destination wrote to another disk: the original image lacks what came after the switch."""
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.disks[0].records = obs.guest.disks[0].records[:8]
    assert "holds 8 record(s), the guest wrote 16" in one(obs, "disk-integrity").observed


def test_io_errors_and_foreign_records() -> None:
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.console.append((T0 + 3, "[   10.2] I/O error, dev vda, sector 16 op 0x1:(WRITE)\n"))
    assert "I/O error line(s)" in one(obs, "disk-integrity").observed
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.disks[1].records[3] = Record(3, "vdb", 3, "00000000", True)
    assert "records of other boots: 00000000" in one(obs, "disk-integrity").observed


def test_no_record_after_the_switch() -> None:
    obs = good_linux()
    assert obs.guest is not None
    for d in obs.guest.disks:
        d.before_switch = len(d.records)
    assert "no record written after the switch" in one(obs, "disk-integrity").observed
    assert one(good_linux("boot"), "disk-integrity").verdict == "pass"  # boot has no switch


def test_machines_without_disks_or_network_skip_those_checks() -> None:
    checks = by_name(good_linux(devices=("display",)))
    assert checks["disk-integrity"].verdict == "skip" and "has no disk" in checks["disk-integrity"].observed
    assert checks["net-continuity"].verdict == "skip"


# ---- net-continuity ----
def _stream(obs):
    assert obs.guest is not None and obs.guest.stream is not None
    return obs.guest.stream


def test_a_gap_or_duplicate_in_the_stream() -> None:
    obs = good_linux()
    lines = _stream(obs).lines
    del lines[50:52]
    assert "sequence broken: 52 after 49 (gap of 2)" in one(obs, "net-continuity").observed
    obs = good_linux()
    lines = _stream(obs).lines
    lines.insert(51, dataclasses.replace(lines[50]))
    assert "50 after 50 (duplicate)" in one(obs, "net-continuity").observed


def test_a_stream_that_stops_at_the_switch() -> None:
    """The destination's NIC is wired elsewhere: nothing arrives after the switch, no FIN."""
    obs = good_linux()
    st = _stream(obs)
    st.lines, st.fin_at = st.lines[:50], None
    obs.serial_log = obs.serial_log.replace("sent=80 nc-exit=0 ended=asked", "sent=57 nc-exit=0 ended=early")
    assert obs.guest is not None
    obs.guest.self_check = linux.self_check(obs.serial_log, "t1")
    c = one(obs, "net-continuity")
    assert c.verdict == "fail"
    for part in ("no line arrived after the destination resumed", "not closed by the guest",
                 "the guest sent 57 line(s), the peer received 50", "before the self-check"):  # fmt: skip
        assert part in c.observed, part


def test_a_reopened_or_reset_connection() -> None:
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.streams = 2
    assert "2 TCP connections" in one(obs, "net-continuity").observed
    obs = good_linux()
    _stream(obs).reset_at = T0 + 1
    assert "reset (RST)" in one(obs, "net-continuity").observed
    obs = good_linux()
    _stream(obs).opened_at = T0 + 1
    assert "opened after the switch" in one(obs, "net-continuity").observed
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.stream = None
    assert "opened no TCP connection" in one(obs, "net-continuity").observed


def test_lines_of_another_boot() -> None:
    obs = good_linux()
    st = _stream(obs)
    st.lines[60] = dataclasses.replace(st.lines[60], text="cprnet 60 deadbeef")
    assert f"lines of other boots: {min('deadbeef', BOOT_ID)}" in one(obs, "net-continuity").observed


# ---- guest-health ----
def test_kernel_trouble_after_the_switch_fails_guest_health() -> None:
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.console.append((T0 + 1, "[   12.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n"))
    c = one(obs, "guest-health")
    assert c.verdict == "fail" and c.observed.startswith(
        "1 problem line(s) after the switch, first: RCU stall"
    )


@pytest.mark.parametrize(
    "line",
    [
        "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "Oops: general protection fault, probably for non-canonical address",
        "WARNING: CPU: 1 PID: 0 at kernel/time/tick-sched.c:1100 tick_nohz_idle_exit+0x10/0x20",
        "INFO: task kworker/0:1:12 blocked for more than 120 seconds.",
        "clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as unstable because the skew",
        "[drm:qxl_bo_create [qxl]] *ERROR* failed to allocate VRAM BO",
    ],
)
def test_every_kind_of_trouble_is_seen(line: str) -> None:
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.console.append((T0 + 1, f"[   12.0] {line}\n"))
    assert one(obs, "guest-health").verdict == "fail"


def test_what_is_not_trouble() -> None:
    obs = good_linux()
    assert obs.guest is not None
    late = (
        "clocksource: Long readout interval, skipping watchdog check: cs_nsec: 1995173777 wd_nsec: 1995157620"
    )
    obs.guest.console.append((T0 + 1, f"[    7.3] {late}\n"))
    assert one(obs, "guest-health").verdict == "pass"
    obs.guest.console.insert(0, (T0 - 8, "[    1.0] WARNING: CPU: 0 PID: 1 at drivers/x.c:1 f+0x1/0x2\n"))
    c = one(obs, "guest-health")
    assert c.verdict == "pass" and "1 before the switch" in c.observed  # shown, not a live-update finding
    obs.guest.console = []
    assert one(obs, "guest-health").observed == "no kernel console output was received"


# ---- guest-self-check ----
def test_the_guests_verdict_and_its_virtio_serial_mirror() -> None:
    obs = good_linux()
    assert one(obs, "guest-self-check").observed == "CPRSELF VERDICT PASS token=t1"
    assert obs.guest is not None
    obs.guest.vport = [1, 2, 3, 7, 8]
    assert "virtio-serial counter broken: 7 after 3" in one(obs, "guest-self-check").observed
    obs.guest.self_check, obs.guest.self_check_problem = None, "no CPRSELF VERDICT for token t1 within 45 s"
    assert one(obs, "guest-self-check").observed == "no CPRSELF VERDICT for token t1 within 45 s"


# ---- device-memory ----
def test_device_memory_changed_missing_or_extra() -> None:
    obs = good_linux()
    obs.destination.device_memory = dict(DEVICE_MEMORY) | {"rom pc.bios 0xfffc0000-0xffffffff": "00" * 32}
    c = one(obs, "device-memory")
    assert c.verdict == "fail" and c.observed == "rom pc.bios 0xfffc0000-0xffffffff changed"
    assert "DIFFERENT rom pc.bios" in c.detail and "same      acpi DSDT" in c.detail
    del obs.destination.device_memory["acpi DSDT 0x1ffe0040"]
    obs.destination.device_memory["qxl.vram 0xf8000000-0xf800ffff (head)"] = "11" * 32
    observed = one(obs, "device-memory").observed
    assert "destination lacks acpi DSDT 0x1ffe0040" in observed and "extra region qxl.vram" in observed
    obs.destination.device_memory = None
    assert one(obs, "device-memory").observed == "no destination device memory was read"
    assert one(good_linux("boot"), "device-memory").verdict == "skip"


def test_a_vm_that_did_not_run_is_named_as_such() -> None:
    """An RCU stall whose cause the kernel names as its timer not firing: the VM did not run at all."""
    obs = good_linux()
    assert obs.guest is not None
    obs.guest.console.append(
        (
            T0 + 1,
            "[   35.92] rcu: INFO: rcu_preempt self-detected stall on CPU\n"
            "[   35.92] rcu: rcu_preempt kthread timer wakeup didn't happen for 8446 jiffies! g-971 f0x0\n",
        )
    )
    c = one(obs, "guest-health")
    assert c.verdict == "fail" and "timer did not fire for 8446 jiffies: the VM did not run" in c.observed
