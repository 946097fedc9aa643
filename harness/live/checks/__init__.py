"""Verdicts over what a scenario observed (standard library only; pure functions, no processes).

A scenario fills an :class:`~harness.live.checks.base.Observation`; :func:`evaluate` turns it into named
:class:`~harness.live.result.Check` records (the names are stable ids used by reports) and
:func:`verdict_of` into the cell's verdict and reason. One module per family of checks: ``lifecycle``
(runstates, process hygiene), ``continuity`` (boot marker, counters, RAM digest), ``devices`` (device
tree, device memory), ``timing`` (state file, pause); for the Linux guest only: ``storage`` (disk
integrity), ``network`` (net continuity), ``health`` (its kernel log, its own self-check); for refusal
scenarios: ``refusal`` (QEMU refused, the source unharmed); for all: ``sanitizers`` (ASan/UBSan reports
in any QEMU's stderr).
"""

from __future__ import annotations

from harness.live.checks.base import Observation, SideObservation
from harness.live.checks.continuity import (
    check_boot_marker,
    check_counter_qmp,
    check_counter_serial,
    check_ram_digest,
)
from harness.live.checks.devices import check_device_memory, check_device_tree
from harness.live.checks.health import check_guest_health, check_guest_self_check
from harness.live.checks.lifecycle import check_process_hygiene, check_runstates
from harness.live.checks.network import check_net_continuity, stream_gaps
from harness.live.checks.refusal import refusal_checks
from harness.live.checks.sanitizers import check_sanitizers
from harness.live.checks.storage import check_disk_integrity
from harness.live.checks.timing import check_pause_time, check_state_file_size, pause_ms, switch_window
from harness.live.result import Check
from harness.live.vocab import CheckVerdict, Mode, Verdict

__all__ = ["Observation", "SideObservation", "evaluate", "figures", "pause_ms", "verdict_of"]


def evaluate(obs: Observation) -> list[Check]:
    """All checks, in report order; checks that do not apply to ``obs.mode`` (or to the machine's
    devices) are ``skip``. The Linux guest's checks are listed only for a Linux guest. A refusal scenario
    has its own checks (:mod:`harness.live.checks.refusal`)."""
    mode = Mode(obs.mode)  # ValueError for a mode the harness does not know
    obs.mode = mode
    if obs.refusal is not None:
        return refusal_checks(obs, obs.refusal)
    checks = [
        check_runstates(obs),
        check_boot_marker(obs),
        check_counter_serial(obs),
        check_counter_qmp(obs),
        check_ram_digest(obs),
        check_device_tree(obs),
        check_device_memory(obs),
        check_process_hygiene(obs),
        check_state_file_size(obs),
        check_pause_time(obs),
    ]
    if obs.guest is not None:
        checks += [
            check_disk_integrity(obs),
            check_net_continuity(obs),
            check_guest_health(obs),
            check_guest_self_check(obs),
        ]
    return [*checks, check_sanitizers(obs)]


def figures(obs: Observation) -> dict[str, float]:
    """The Linux guest's disk and network figures (records written and verified, stream lines and gaps)."""
    g = obs.guest
    if g is None:
        return {}
    out: dict[str, float] = {}
    if g.disks:
        out["disk_records"] = float(sum(len(d.records) for d in g.disks))
        out["disk_records_intact"] = float(sum(r.ok for d in g.disks for r in d.records))
        said = g.self_check.disks.values() if g.self_check else []
        verified = [int(p["verified"]) for p in said if p.get("verified", "").lstrip("-").isdigit()]
        if verified:
            out["disk_records_verified_by_guest"] = float(sum(verified))
        before = [d.before_switch for d in g.disks if d.before_switch is not None]
        if before and obs.destination is not None:
            out["disk_records_after_switch"] = out["disk_records"] - sum(before)
    if g.stream is not None:
        stop, resume, _ = switch_window(obs)
        biggest, across = stream_gaps([ln.t for ln in g.stream.lines], stop, resume)
        out["net_lines"] = float(len(g.stream.lines))
        out["net_gap_max_ms"] = round(biggest, 1)
        if across is not None:
            out["net_gap_switch_ms"] = round(across, 1)
    return out


def verdict_of(checks: list[Check]) -> tuple[Verdict, str]:
    """(pass | fail, reason): the reason of a fail is the first failed check's name and observation."""
    if not checks:
        return Verdict.FAIL, "no checks were evaluated"
    for c in checks:
        if c.verdict is CheckVerdict.FAIL:
            return Verdict.FAIL, f"{c.name}: {c.observed}"
    skipped = sum(c.verdict is CheckVerdict.SKIP for c in checks)
    return Verdict.PASS, f"{len(checks) - skipped} checks passed" + (
        f", {skipped} skipped" if skipped else ""
    )
