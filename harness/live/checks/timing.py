"""Timing checks: the cpr-reboot state file is small, and the pause (source STOP -> destination RESUME)."""

from __future__ import annotations

from typing import Any

from harness.live.checks.base import Observation, passed_if, skipped
from harness.live.result import Check
from harness.live.vocab import Mode

# state-file-size: with x-ignore-shared and a named-file backend the guest RAM is not in the stream, only
# device state and small non-shared blocks (ROMs): ~108 KB for 1 or 2 GiB guests. Without it every 4 KiB
# page costs at least 9 bytes even when zero (8-byte page header + 1 byte), i.e. >= guest RAM / 455. The
# limit, guest RAM / 512 + 64 KiB, therefore fails any stream that carries the RAM, even an idle guest's,
# and passes the device-state-only stream for guests of 32 MiB and more (576 KiB for 256 MiB). Firmware
# ROM and flash are not guest RAM and go into the stream whole (OVMF's code and variables: 4.1 MiB): the
# bytes of the ROM and flash blocks the source maps (device memory) are allowed on top. A stream that
# carries the RAM still exceeds that: beside one header per page it holds every page the guest wrote (the
# firmware guest's 1 MiB pattern, the Linux guest's kernel and initramfs).
STATE_FILE_RAM_DIVISOR = 512
STATE_FILE_ALLOWANCE = 64 * 1024


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_state_file_size(obs: Observation) -> Check:
    if obs.mode is not Mode.CPR_REBOOT:
        return skipped("state-file-size", f"only for cpr-reboot (mode {obs.mode})")
    limit = obs.guest_ram_bytes // STATE_FILE_RAM_DIVISOR + STATE_FILE_ALLOWANCE + obs.rom_bytes
    roms = f" + {_size(obs.rom_bytes)} ROM and flash" if obs.rom_bytes else ""
    expected = (
        f"< {_size(limit)} (guest RAM / {STATE_FILE_RAM_DIVISOR} + {_size(STATE_FILE_ALLOWANCE)}{roms})"
    )
    size = obs.state_file_bytes
    if size is None:
        return passed_if("state-file-size", False, expected, "state file size not recorded")
    pct = 100 * size / obs.guest_ram_bytes if obs.guest_ram_bytes else float("inf")
    observed = f"{_size(size)} = {pct:.2f}% of {_size(obs.guest_ram_bytes)} guest RAM"
    if size >= limit:
        observed += ": guest RAM was copied (x-ignore-shared / named-file backend not effective)"
    return passed_if("state-file-size", size < limit, expected, observed)


def _event_time(ev: dict[str, Any]) -> float | None:
    if isinstance(ev.get("t"), int | float):
        return float(ev["t"])
    ts = ev.get("timestamp")
    if isinstance(ts, dict) and "seconds" in ts:
        return float(ts["seconds"]) + float(ts.get("microseconds", 0)) / 1e6
    return None


def switch_window(obs: Observation) -> tuple[float | None, float | None, str]:
    """(the source's last STOP, the destination's first RESUME after it, why one is missing): epoch
    seconds from QEMU's event timestamps."""
    if obs.destination is None:
        return None, None, "no destination"
    stops = [
        t for ev in obs.source.events if ev.get("event") == "STOP" and (t := _event_time(ev)) is not None
    ]
    if not stops:
        return None, None, "source never emitted STOP"
    resumes = [
        t
        for ev in obs.destination.events
        if ev.get("event") == "RESUME" and (t := _event_time(ev)) is not None
    ]
    after = [t for t in resumes if t >= stops[-1]]
    if not after:
        why = "destination never resumed" if not resumes else "destination RESUME precedes the source STOP"
        return stops[-1], None, why
    return stops[-1], after[0], ""


def pause_ms(obs: Observation) -> tuple[float | None, str]:
    """(source STOP → destination RESUME in ms, or None, explanation) from QEMU event timestamps."""
    stop, resume, why = switch_window(obs)
    if stop is None or resume is None:
        return None, why
    return (resume - stop) * 1000, ""


def check_pause_time(obs: Observation) -> Check:
    if obs.destination is None:
        return skipped("pause-time", "no destination (boot)")
    ms, why = pause_ms(obs)
    downtime = f"QEMU downtime {obs.downtime_ms:g} ms" if obs.downtime_ms is not None else "no QEMU downtime"
    expected = "source STOP and destination RESUME events"
    if ms is None:
        return passed_if("pause-time", False, expected, f"{why} ({downtime})")
    return passed_if("pause-time", True, expected, f"{ms:.1f} ms ({downtime})")
