"""Verdicts over what a scenario observed (standard library only; pure functions, no processes).

A scenario fills an :class:`~harness.live.checks.base.Observation`; :func:`evaluate` turns it into named
:class:`~harness.live.result.Check` records (the names are stable ids used by reports) and
:func:`verdict_of` into the cell's verdict and reason. One module per family of checks: ``lifecycle``
(runstates, process hygiene), ``continuity`` (boot marker, counters, RAM digest), ``devices`` (device
tree), ``timing`` (state file, pause).
"""

from __future__ import annotations

from harness.live.checks.base import Observation, SideObservation
from harness.live.checks.continuity import (
    check_boot_marker,
    check_counter_qmp,
    check_counter_serial,
    check_ram_digest,
)
from harness.live.checks.devices import check_device_tree
from harness.live.checks.lifecycle import check_process_hygiene, check_runstates
from harness.live.checks.timing import check_pause_time, check_state_file_size, pause_ms
from harness.live.result import Check
from harness.live.vocab import CheckVerdict, Mode, Verdict

__all__ = ["Observation", "SideObservation", "evaluate", "pause_ms", "verdict_of"]


def evaluate(obs: Observation) -> list[Check]:
    """All checks, in report order; checks that do not apply to ``obs.mode`` are ``skip``."""
    mode = Mode(obs.mode)  # ValueError for a mode the harness does not know
    obs.mode = mode
    return [
        check_runstates(obs),
        check_boot_marker(obs),
        check_counter_serial(obs),
        check_counter_qmp(obs),
        check_ram_digest(obs),
        check_device_tree(obs),
        check_process_hygiene(obs),
        check_state_file_size(obs),
        check_pause_time(obs),
    ]


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
