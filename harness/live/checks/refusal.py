"""The checks of a refusal scenario: QEMU refused, and the source came through it unharmed.

There is no destination to compare with: the evidence is the source's, before the provocation
(:attr:`RefusalObservation.before`) and after QEMU refused (the observation's source). The pattern
digest, the device memory and the device tree are compared by the checks of a migration, the source
after the refusal standing where the destination stands.
"""

from __future__ import annotations

import dataclasses

from harness.live.checks.base import Observation, RefusalObservation, passed_if
from harness.live.checks.continuity import check_boot_marker, check_counter_serial, check_ram_digest
from harness.live.checks.devices import check_device_memory, check_device_tree
from harness.live.checks.lifecycle import _arrow, _sequence_problem
from harness.live.checks.sanitizers import check_sanitizers
from harness.live.processes import describe_exit
from harness.live.result import Check

# Runstates a source may pass through while refusing: it stays running (a QMP refusal), or stops and
# runs again (a failed cpr-exec stops the guest, migrates, then resumes it when the exec fails).
REFUSING_TRANSITIONS: dict[str, frozenset[str]] = {
    "running": frozenset({"finish-migrate", "paused", "postmigrate"}),
    "paused": frozenset({"finish-migrate", "postmigrate", "running"}),
    "finish-migrate": frozenset({"postmigrate", "running"}),
    "postmigrate": frozenset({"running"}),
}
AFTER = "source after the refusal"


def refusal_checks(obs: Observation, r: RefusalObservation) -> list[Check]:
    """Every check of a refusal scenario, in report order."""
    before_after = dataclasses.replace(obs, source=r.before, destination=obs.source)
    return [
        check_refused(r),
        check_source_runstates(obs),
        check_boot_marker(obs),
        check_counter_serial(obs),
        check_source_counter(obs, r),
        *(_after(c) for c in (check_ram_digest(before_after), check_device_tree(before_after))),
        _after(check_device_memory(before_after)),
        check_source_hygiene(obs),
        check_sanitizers(obs),
    ]


def _after(c: Check) -> Check:
    """A migration check read as before/after on the source: its "destination" is the source after."""
    return dataclasses.replace(
        c,
        expected=c.expected.replace("destination", AFTER),
        observed=c.observed.replace("destination", AFTER),
    )


def check_refused(r: RefusalObservation) -> Check:
    expected = f"QEMU refuses: {r.provokes} ({r.documented})"
    observed = f"{r.where}: {r.refused}" if r.refused else "QEMU did not refuse"
    return passed_if("refusal", bool(r.refused), expected, observed)


def check_source_runstates(obs: Observation) -> Check:
    states = obs.source.runstates
    problem = _sequence_problem(states, REFUSING_TRANSITIONS, "running", {"running"})
    expected = "source: running, and running again after refusing (never postmigrate for good)"
    return passed_if("runstates", not problem, expected, f"source: {problem}" if problem else _arrow(states))


def check_source_counter(obs: Observation, r: RefusalObservation) -> Check:
    """The guest counter read over QMP never goes back and has advanced since the provocation (the
    guest runs on after the refusal, not only before it)."""
    values, before = obs.source.counters, r.before.counters
    problem = ""
    if len(values) < 2:
        problem = f"only {len(values)} read(s)"
    elif any(b < a for a, b in zip(values, values[1:], strict=False)):
        problem = f"the counter went back: {values}"
    elif values[-1] <= (before[-1] if before else values[0]):
        last = before[-1] if before else values[0]
        problem = (
            f"the counter did not advance after the refusal ({last} → {values[-1]}): the guest does not run"
        )
    return passed_if(
        "counter-qmp", not problem, "source counter increases across the refusal", problem or str(values)
    )


def check_source_hygiene(obs: Observation) -> Check:
    """The source quit cleanly at the end; nothing is left running. A destination started for the
    refusal (cpr-transfer) is never used: its end is not judged."""
    src, problems = obs.source, []
    if src.exit_code is None:
        problems.append("source QEMU still alive at teardown")
    elif src.exit_code != 0:
        problems.append(f"source exited with {describe_exit(src.exit_code)}")
    if obs.leftover_processes:
        problems.append(f"leftover processes: {'; '.join(obs.leftover_processes[:5])}")
    seen = f"source exit {describe_exit(src.exit_code)}; no leftovers"
    return passed_if(
        "process-hygiene", not problems, "source quits (exit 0), no leftovers", "; ".join(problems) or seen
    )
