"""Unit tests of harness.checks: every check has at least one failing and one passing case."""

from __future__ import annotations

import dataclasses

import pytest

from harness.checks import (
    STATE_FILE_ALLOWANCE,
    Observation,
    SideObservation,
    evaluate,
    pause_ms,
    qtree_devices,
    serial_counters,
    verdict_of,
)
from harness.results import Check

MiB = 1024 * 1024
T0 = 1_795_000_000.0  # an epoch second in 2026

# `info qtree` of a q35 guest with default IDE (abridged from QEMU 11.1, -machine q35 -nodefaults).
QTREE_SRC = """\
bus: main-system-bus
  type System
  dev: hpet, id ""
    gpio-in "" 2
    gpio-out "" 1
    gpio-out "sysbus-irq" 32
    timers = 3 (0x3)
    msi = false
    hpet-intcap = 16711940 (0xff0104)
    hpet-offset-saved = true
    mmio 00000000fed00000/0000000000000400
  dev: ioapic, id ""
    gpio-in "" 24
    version = 32 (0x20)
    mmio 00000000fec00000/0000000000001000
  dev: q35-pcihost, id ""
    MCFG = 2952790016 (0xb0000000)
    pci-hole64-size = 34359738368 (32 GiB)
    short_root_bus = 0 (0x0)
    below-4g-mem-size = 268435456 (256 MiB)
    above-4g-mem-size = 0 (0 B)
    x-pci-hole64-fix = true
    x-config-reg-migration-enabled = true
    bus: pcie.0
      type PCIE
      dev: ich9-ahci, id ""
        addr = 1f.2
        romfile = ""
        romsize = 4294967295 (0xffffffff)
        multifunction = false
        class SATA controller, addr 00:1f.2, pci id 8086:2922 (sub 1af4:1100)
        bar 4: i/o at 0xc040 [0xc05f]
        bar 5: mem at 0xfebd1000 [0xfebd1fff]
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.1
          type IDE
        bus: ide.0
          type IDE
      dev: ICH9-LPC, id ""
        gpio-out "gsi" 24
        noreboot = true
        smm-compat = false
        addr = 1f.0
        class ISA bridge, addr 00:1f.0, pci id 8086:2918 (sub 1af4:1100)
        bus: isa.0
          type ISA
          dev: isa-serial, id ""
            index = 0 (0x0)
            iobase = 1016 (0x3f8)
            irq = 4 (0x4)
      dev: mch, id ""
        extended-tseg-mbytes = 16 (0x10)
        smbase-smram = true
        addr = 00.0
        class Host bridge, addr 00:00.0, pci id 8086:29c0 (sub 1af4:1100)
"""

# The destination of a cpr-exec whose argv carried a stray positional argument (taken as -hda): the
# guest grew an ide-hd on ide.0 (as observed in /work/shared/seeds/000_4d8084bd803e1235.txt, where the
# bus order also changed).
QTREE_DST_EXTRA_HD = QTREE_SRC.replace(
    """\
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.1
          type IDE
        bus: ide.0
          type IDE
""",
    """\
        bus: ide.1
          type IDE
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.0
          type IDE
          dev: ide-hd, id ""
            drive = "ide0-hd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
""",
)


def serial_log(first: int = 0, count: int = 60, boot_id: str = "7c1e04a9", boots: int = 1) -> str:
    """What the guest prints: a boot marker, then one counter line per ~0.1 s."""
    lines = []
    for _ in range(boots):
        lines.append(f"CPRGUEST BOOT {boot_id}")
        lines.extend(f"CPRGUEST N={n}" for n in range(first, first + count))
    return "\n".join(lines) + "\n"


def events_src(t_stop: float) -> list[dict]:
    return [
        {"event": "MIGRATION", "data": {"status": "setup"}, "t": t_stop - 0.004},
        {"event": "MIGRATION", "data": {"status": "active"}, "t": t_stop - 0.003},
        {"event": "STOP", "data": {}, "t": t_stop},
        {"event": "MIGRATION", "data": {"status": "device"}, "t": t_stop + 0.0001},
        {"event": "MIGRATION", "data": {"status": "completed"}, "t": t_stop + 0.0012},
    ]


def events_dst(t_resume: float) -> list[dict]:
    return [
        {"event": "MIGRATION", "data": {"status": "active"}, "t": t_resume - 0.002},
        {"event": "MIGRATION", "data": {"status": "completed"}, "t": t_resume - 0.0001},
        {"event": "RESUME", "data": {}, "t": t_resume},
    ]


def good(mode: str = "cpr-transfer") -> Observation:
    """A realistic observation of a successful run in ``mode``."""
    if mode == "boot":
        src = SideObservation("source", ["running"], [], QTREE_SRC, [3, 14, 27], None, None)
        return Observation("boot", serial_log(0, 30), src, None, 256 * MiB)
    src_states = ["running"] if mode == "cpr-exec" else ["running", "finish-migrate", "postmigrate"]
    src = SideObservation(
        role="source",
        runstates=src_states,
        events=events_src(T0),
        qtree=QTREE_SRC,
        counters=[12, 25, 31],
        ram_digest="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        exit_code=None if mode == "cpr-exec" else 0,
    )
    dst = SideObservation(
        role="destination",
        runstates=["inmigrate", "running"],
        events=events_dst(T0 + 0.0025),
        qtree=QTREE_SRC,
        counters=[31, 33, 47],
        ram_digest=src.ram_digest,
        exit_code=None,
    )
    return Observation(
        mode=mode,
        serial_log=serial_log(0, 60),
        source=src,
        destination=dst,
        guest_ram_bytes=256 * MiB,
        state_file_bytes=108_412 if mode in ("cpr-reboot", "cpr-exec") else None,
        downtime_ms=2.0,
        leftover_processes=[],
    )


def by_name(obs: Observation) -> dict[str, Check]:
    checks = evaluate(obs)
    return {c.name: c for c in checks}


def one(obs: Observation, name: str) -> Check:
    return by_name(obs)[name]


NAMES = [
    "runstates",
    "boot-marker",
    "counter-serial",
    "counter-qmp",
    "ram-digest",
    "device-tree",
    "process-hygiene",
    "state-file-size",
    "pause-time",
]


# --- whole evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"])
def test_good_runs_pass_every_applicable_check(mode: str) -> None:
    checks = evaluate(good(mode))
    assert [c.name for c in checks] == NAMES
    assert all(c.verdict in ("pass", "skip") for c in checks), [c for c in checks if c.verdict == "fail"]
    verdict, reason = verdict_of(checks)
    assert verdict == "pass", reason
    skipped = {c.name for c in checks if c.verdict == "skip"}
    if mode == "boot":
        assert skipped == {"ram-digest", "device-tree", "state-file-size", "pause-time"}
    elif mode == "cpr-reboot":
        assert skipped == set()
    else:
        assert skipped == {"state-file-size"}


def test_unknown_mode_is_rejected() -> None:
    obs = dataclasses.replace(good(), mode="cpr-teleport")
    with pytest.raises(ValueError, match="cpr-teleport"):
        evaluate(obs)


def test_verdict_of_names_first_failed_check() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 40) + serial_log(0, 10)  # guest restarted during migration
    obs.destination.counters = [0, 4, 9]
    verdict, reason = verdict_of(evaluate(obs))
    assert verdict == "fail"
    assert reason.startswith("boot-marker: 2 boot markers")
    assert "restarted" in reason


def test_verdict_of_edge_cases() -> None:
    assert verdict_of([])[0] == "fail"
    checks = [Check("a", "pass", "x", "y"), Check("b", "skip", "-", "n/a")]
    assert verdict_of(checks) == ("pass", "1 checks passed, 1 skipped")
    checks.append(Check("c", "fail", "1", "2"))
    assert verdict_of(checks) == ("fail", "c: 2")


# --- runstates ----------------------------------------------------------------------------------------


def test_runstates_pass_shows_sequences() -> None:
    c = one(good("normal"), "runstates")
    assert c.verdict == "pass"
    assert "running → finish-migrate → postmigrate" in c.observed
    assert "inmigrate → running" in c.observed


def test_runstates_cpr_reboot_source_may_pause_at_setup() -> None:
    obs = good("cpr-reboot")
    obs.source.runstates = ["running", "paused", "finish-migrate", "postmigrate"]
    assert one(obs, "runstates").verdict == "pass"


def test_runstates_destination_left_paused_fails() -> None:
    obs = good("cpr-transfer")
    obs.destination.runstates = ["inmigrate", "paused"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "destination: unexpected transition inmigrate → paused" in c.observed


def test_runstates_destination_must_end_running() -> None:
    obs = good("normal")
    obs.destination.runstates = ["inmigrate"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "destination: ends 'inmigrate', expected running" in c.observed


def test_runstates_source_resumed_names_the_transition() -> None:
    obs = good("normal")
    obs.source.runstates = ["running", "finish-migrate", "postmigrate", "running"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "source: unexpected transition postmigrate → running (#3" in c.observed


def test_runstates_source_not_postmigrate_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.runstates = ["running", "finish-migrate"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "source: ends 'finish-migrate', expected postmigrate" in c.observed


def test_runstates_source_must_start_running() -> None:
    obs = good("normal")
    obs.source.runstates = ["prelaunch", "running", "postmigrate"]
    assert "starts 'prelaunch'" in one(obs, "runstates").observed


def test_runstates_cpr_exec_old_side_may_stop_anywhere_but_not_resume() -> None:
    obs = good("cpr-exec")
    for old in (["running"], ["running", "finish-migrate"], ["running", "finish-migrate", "postmigrate"]):
        obs.source.runstates = old
        assert one(obs, "runstates").verdict == "pass", old
    obs.source.runstates = ["running", "paused", "running"]  # exec failed: old QEMU resumed
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "paused → running" in c.observed


def test_runstates_empty_fails() -> None:
    obs = good("normal")
    obs.destination.runstates = []
    assert "destination: no runstate recorded" in one(obs, "runstates").observed


def test_runstates_boot() -> None:
    obs = good("boot")
    assert one(obs, "runstates").verdict == "pass"
    obs.source.runstates = ["running", "paused"]
    c = one(obs, "runstates")
    assert c.verdict == "fail"
    assert "running → paused" in c.observed
    obs.source.runstates = []
    assert one(obs, "runstates").verdict == "fail"


# --- boot-marker --------------------------------------------------------------------------------------


def test_boot_marker_once_passes() -> None:
    c = one(good(), "boot-marker")
    assert (c.verdict, c.observed) == ("pass", "1 boot marker (line 1)")


def test_boot_marker_twice_fails_with_lines() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 30) + serial_log(0, 5, boot_id="0b9d22f1")
    c = one(obs, "boot-marker")
    assert c.verdict == "fail"
    assert c.observed == "2 boot markers (lines 1, 32): the guest was restarted"


def test_boot_marker_missing_fails() -> None:
    obs = good()
    obs.serial_log = "".join(f"CPRGUEST N={n}\n" for n in range(20))
    c = one(obs, "boot-marker")
    assert (c.verdict, c.observed) == ("fail", "0 boot markers")


# --- counter-serial -----------------------------------------------------------------------------------


def test_counter_serial_pass_reports_range() -> None:
    c = one(good(), "counter-serial")
    assert c.verdict == "pass"
    assert c.observed == "N=0..59 on lines 2..61, continuous"


def test_counter_serial_tolerates_partial_last_line_and_crlf() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 60).replace("\n", "\r\n") + "CPRGUEST N=6"  # cut mid "N=60"
    c = one(obs, "counter-serial")
    assert c.verdict == "pass", c.observed
    assert "N=0..59" in c.observed


def test_counter_serial_line_continued_by_the_new_qemu() -> None:
    # The old QEMU wrote "CPRGUEST N=1" when the guest stopped mid-line; the new one appends "2\n".
    log = "CPRGUEST BOOT 7c1e04a9\n" + "".join(f"CPRGUEST N={n}\n" for n in range(12)) + "CPRGUEST N=1"
    log += "2\n" + "".join(f"CPRGUEST N={n}\n" for n in range(13, 30))
    values, malformed = serial_counters(log)
    assert [n for _, n in values] == list(range(30)) and not malformed
    obs = good()
    obs.serial_log = log
    assert one(obs, "counter-serial").verdict == "pass"


def test_counter_serial_reset_after_restart() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 58) + serial_log(0, 10, boot_id="0b9d22f1")
    c = one(obs, "counter-serial")
    assert c.verdict == "fail"
    assert c.observed == "line 61: N=0 after N=57 at line 59 (reset)"


def test_counter_serial_gap_and_repeat() -> None:
    lines = ["CPRGUEST BOOT 7c1e04a9"] + [f"CPRGUEST N={n}" for n in [0, 1, 2, 3, 7, 8, 8, 9]]
    obs = good()
    obs.serial_log = "\n".join(lines) + "\n"
    c = one(obs, "counter-serial")
    assert c.verdict == "fail"
    assert c.observed == "line 6: N=7 after N=3 at line 5 (gap of 3) (+1 more)"
    assert "line 8: N=8 after N=8 at line 7 (repeat)" in c.detail


def test_counter_serial_malformed_line_in_the_middle() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 10).replace("CPRGUEST N=5\n", "CPRGUEST N=\x00\x00\n")
    c = one(obs, "counter-serial")
    assert c.verdict == "fail"
    assert c.observed.startswith("line 7: malformed")


def test_counter_serial_two_counters_on_one_line() -> None:
    values, malformed = serial_counters("CPRGUEST N=4CPRGUEST N=5\nCPRGUEST N=6\n")
    assert values == [(1, 4), (1, 5), (2, 6)] and not malformed


def test_counter_serial_needs_counters() -> None:
    obs = good()
    obs.serial_log = "CPRGUEST BOOT 7c1e04a9\nCPRGUEST N=0\n"
    c = one(obs, "counter-serial")
    assert (c.verdict, c.observed) == ("fail", "only 1 counter line(s) in the serial log")


def test_counter_serial_ignores_noise_lines() -> None:
    obs = good()
    obs.serial_log = "qemu-system-x86_64: terminating on signal 15\n" + serial_log(0, 20)
    assert one(obs, "counter-serial").verdict == "pass"


# --- counter-qmp --------------------------------------------------------------------------------------


def test_counter_qmp_pass() -> None:
    c = one(good(), "counter-qmp")
    assert c.verdict == "pass"
    assert c.observed == "source [12, 25, 31] → destination [31, 33, 47]"


def test_counter_qmp_zeroed_ram_after_cpr_exec_fails() -> None:
    # QEMU 11.1.3 bug: cpr-exec without shared RAM "succeeds" and the guest continues with zeroed RAM.
    obs = good("cpr-exec")
    obs.destination.counters = [0, 3, 8]
    c = one(obs, "counter-qmp")
    assert c.verdict == "fail"
    assert "destination starts at 0 < source last 31 (guest state lost)" in c.observed


def test_counter_qmp_destination_not_running_fails() -> None:
    obs = good()
    obs.destination.counters = [31, 31, 31]
    c = one(obs, "counter-qmp")
    assert c.verdict == "fail"
    assert "did not advance (31 → 31)" in c.observed


def test_counter_qmp_needs_two_destination_reads() -> None:
    obs = good()
    obs.destination.counters = [40]
    assert "only 1 destination read(s)" in one(obs, "counter-qmp").observed


def test_counter_qmp_source_going_back_fails() -> None:
    obs = good()
    obs.source.counters = [12, 25, 3]
    obs.destination.counters = [3, 10]
    c = one(obs, "counter-qmp")
    assert c.verdict == "fail"
    assert "source read #3 went back: 25 → 3" in c.observed


def test_counter_qmp_boot() -> None:
    obs = good("boot")
    assert one(obs, "counter-qmp").verdict == "pass"
    obs.source.counters = [5, 5]
    assert one(obs, "counter-qmp").verdict == "fail"
    obs.source.counters = [5]
    assert "only 1 read" in one(obs, "counter-qmp").observed


# --- ram-digest ---------------------------------------------------------------------------------------


def test_ram_digest_equal_passes_and_differs_fails() -> None:
    obs = good()
    assert one(obs, "ram-digest").verdict == "pass"
    obs.destination.ram_digest = "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7"
    c = one(obs, "ram-digest")
    assert c.verdict == "fail"
    assert c.observed == "source 9f86d081884c7d65… ≠ destination ad7facb2586fc6e9…"


def test_ram_digest_skipped_when_missing() -> None:
    obs = good()
    obs.destination.ram_digest = None
    c = one(obs, "ram-digest")
    assert (c.verdict, c.observed) == ("skip", "no destination digest")


# --- device-tree --------------------------------------------------------------------------------------


def test_device_tree_identical_passes() -> None:
    c = one(good(), "device-tree")
    assert c.verdict == "pass"
    assert c.observed == f"identical ({len(QTREE_SRC.splitlines())} lines)"


def test_device_tree_extra_ide_hd_is_named() -> None:
    obs = good("cpr-exec")
    obs.destination.qtree = QTREE_DST_EXTRA_HD
    c = one(obs, "device-tree")
    assert c.verdict == "fail"
    assert c.observed == "destination has extra dev: ide-hd (drive ide0-hd0)"
    assert c.detail.startswith("--- source (before)\n+++ destination (after)\n")
    assert '+          dev: ide-hd, id ""' in c.detail.splitlines()
    assert '+            drive = "ide0-hd0"' in c.detail.splitlines()
    reason = verdict_of(evaluate(obs))[1]
    assert reason == "device-tree: destination has extra dev: ide-hd (drive ide0-hd0)"


def test_device_tree_missing_device_is_named() -> None:
    obs = good()
    obs.source.qtree = QTREE_DST_EXTRA_HD
    c = one(obs, "device-tree")
    assert c.observed == "destination lacks dev: ide-hd (drive ide0-hd0)"


def test_device_tree_property_change_fails_without_hiding() -> None:
    obs = good()
    obs.destination.qtree = QTREE_SRC.replace("hpet-offset-saved = true", "hpet-offset-saved = false")
    c = one(obs, "device-tree")
    assert c.verdict == "fail"
    assert c.observed == "same devices, 2 changed line(s), first: - hpet-offset-saved = true"
    assert "+    hpet-offset-saved = false" in c.detail


def test_device_tree_whitespace_is_not_normalised() -> None:
    obs = good()
    obs.destination.qtree = QTREE_SRC.replace("  dev: ioapic", "   dev: ioapic")
    assert one(obs, "device-tree").verdict == "fail"


def test_device_tree_skipped_without_text() -> None:
    obs = good()
    obs.source.qtree = None
    assert one(obs, "device-tree").verdict == "skip"


def test_qtree_devices_labels() -> None:
    devs = qtree_devices(QTREE_DST_EXTRA_HD + '          dev: virtio-blk-pci, id "disk0"\n')
    assert devs["ide-hd (drive ide0-hd0)"] == 1
    assert devs["ide-cd (drive ide2-cd0)"] == 1
    assert devs["isa-serial"] == 1
    assert devs['virtio-blk-pci id "disk0"'] == 1
    assert devs["ich9-ahci"] == 1  # the ide-cd's drive below is not attributed to the controller


# --- process-hygiene ----------------------------------------------------------------------------------


def test_process_hygiene_pass() -> None:
    c = one(good("cpr-transfer"), "process-hygiene")
    assert c.verdict == "pass"
    assert c.observed == "source exit 0, destination exit alive; no leftovers"


def test_process_hygiene_old_qemu_still_alive_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.exit_code = None
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source QEMU still alive after migration" in c.observed


def test_process_hygiene_cpr_exec_same_process_may_be_alive() -> None:
    obs = good("cpr-exec")
    assert obs.source.exit_code is None
    assert one(obs, "process-hygiene").verdict == "pass"


def test_process_hygiene_abort_is_named() -> None:
    obs = good("cpr-transfer")
    obs.source.exit_code = -6  # assertion failed: (channel) in migration/cpr.c
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source exited with -6 (SIGABRT)" in c.observed


def test_process_hygiene_resume_after_completed_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.events = events_src(T0) + [{"event": "RESUME", "data": {}, "t": T0 + 0.5}]
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "source emitted RESUME after MIGRATION completed" in c.observed


def test_process_hygiene_flag_resumed_after_migration_fails() -> None:
    obs = good("cpr-transfer")
    obs.source.resumed_after_migration = True
    assert "source ran again" in one(obs, "process-hygiene").observed


def test_process_hygiene_resume_before_migration_is_fine() -> None:
    obs = good("normal")
    obs.source.events = [{"event": "STOP", "t": T0 - 5}, {"event": "RESUME", "t": T0 - 4}] + events_src(T0)
    assert one(obs, "process-hygiene").verdict == "pass"


def test_process_hygiene_leftovers_and_zombies_fail() -> None:
    obs = good("normal")
    obs.leftover_processes = [
        "4242 qemu-system-x86 Z",
        "4243 qemu-system-x86 <defunct>",
        "4244 qemu-system-x86 S",
    ]
    c = one(obs, "process-hygiene")
    assert c.verdict == "fail"
    assert "leftover processes (2 defunct): 4242 qemu-system-x86 Z" in c.observed


def test_process_hygiene_boot() -> None:
    obs = good("boot")
    assert one(obs, "process-hygiene").verdict == "pass"
    obs.source.exit_code = 1
    assert "source exited with 1" in one(obs, "process-hygiene").observed


# --- state-file-size ----------------------------------------------------------------------------------


def test_state_file_size_small_passes() -> None:
    c = one(good("cpr-reboot"), "state-file-size")
    assert c.verdict == "pass"
    assert c.expected == "< 576.0 KiB (guest RAM / 512 + 64.0 KiB)"
    assert c.observed == "105.9 KiB = 0.04% of 256.0 MiB guest RAM"


def test_state_file_size_idle_guest_copied_fails() -> None:
    # Without x-ignore-shared even an idle 256 MiB guest costs 9 bytes per zero page: 576 KiB + devices.
    obs = good("cpr-reboot")
    obs.state_file_bytes = 108_412 + 9 * (256 * MiB // 4096)
    c = one(obs, "state-file-size")
    assert c.verdict == "fail"
    assert "guest RAM was copied" in c.observed


def test_state_file_size_filled_guest_fails() -> None:
    obs = good("cpr-reboot")
    obs.guest_ram_bytes = 2048 * MiB
    obs.state_file_bytes = 2_100_000_000
    c = one(obs, "state-file-size")
    assert c.verdict == "fail"
    assert c.observed.startswith("2.0 GiB = 97.79% of 2.0 GiB guest RAM: guest RAM was copied")


def test_state_file_size_limits() -> None:
    obs = good("cpr-reboot")
    obs.guest_ram_bytes = 64 * MiB
    obs.state_file_bytes = 64 * MiB // 512 + STATE_FILE_ALLOWANCE
    assert one(obs, "state-file-size").verdict == "fail"
    obs.state_file_bytes -= 1
    assert one(obs, "state-file-size").verdict == "pass"
    obs.state_file_bytes = None
    assert one(obs, "state-file-size").observed == "state file size not recorded"


def test_state_file_size_skipped_for_other_modes() -> None:
    obs = good("cpr-exec")
    obs.state_file_bytes = 300 * MiB
    assert one(obs, "state-file-size").verdict == "skip"


# --- pause-time ---------------------------------------------------------------------------------------


def test_pause_time_pass_reports_ms_and_downtime() -> None:
    c = one(good(), "pause-time")
    assert (c.verdict, c.observed) == ("pass", "2.5 ms (QEMU downtime 2 ms)")


def test_pause_time_destination_never_resumed_fails() -> None:
    obs = good()
    obs.destination.events = [e for e in obs.destination.events if e["event"] != "RESUME"]
    obs.downtime_ms = None
    c = one(obs, "pause-time")
    assert (c.verdict, c.observed) == ("fail", "destination never resumed (no QEMU downtime)")


def test_pause_time_source_never_stopped_fails() -> None:
    obs = good()
    obs.source.events = []
    assert one(obs, "pause-time").observed.startswith("source never emitted STOP")


def test_pause_time_uses_last_stop_and_qmp_timestamps() -> None:
    obs = good("cpr-exec")
    stamp = {"seconds": int(T0) + 10, "microseconds": 40_000}
    obs.source.events = [{"event": "STOP", "t": T0}, {"event": "RESUME", "t": T0 + 1}]
    obs.source.events.append({"event": "STOP", "data": {}, "timestamp": stamp})
    obs.destination.events = [
        {"event": "RESUME", "timestamp": {"seconds": int(T0) + 10, "microseconds": 92_500}}
    ]
    ms, why = pause_ms(obs)
    assert ms == pytest.approx(52.5) and why == ""
    obs.destination.events = [{"event": "RESUME", "t": T0 + 0.5}]
    assert pause_ms(obs) == (None, "destination RESUME precedes the source STOP")
    assert one(obs, "pause-time").verdict == "fail"


def test_pause_time_boot_skipped() -> None:
    assert one(good("boot"), "pause-time").verdict == "skip"
