"""Continuity checks: boot marker, counters (serial and QMP), RAM digest."""

from __future__ import annotations

from observations import good, one, serial_log

from harness.live.checks.continuity import serial_counters

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


def test_ram_digest_fails_when_evidence_is_missing() -> None:
    obs = good()
    obs.destination.ram_digest = None  # a migration mode must have digests on both sides
    c = one(obs, "ram-digest")
    assert (c.verdict, c.observed) == ("fail", "no destination digest was taken")
    assert one(good("boot"), "ram-digest").verdict == "skip"  # boot has no destination: not applicable
