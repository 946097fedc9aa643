"""Timing checks: the cpr-reboot state file and the pause."""

from __future__ import annotations

import pytest
from observations import T0, MiB, good, one

from harness.live.checks import pause_ms
from harness.live.checks.timing import STATE_FILE_ALLOWANCE

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
