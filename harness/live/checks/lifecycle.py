"""Lifecycle checks: the runstates each side went through, and process hygiene (who quit, who is left)."""

from __future__ import annotations

from harness.live.checks.base import Observation, passed_if
from harness.live.processes import describe_exit
from harness.live.result import Check
from harness.live.vocab import Mode

# Runstates an outgoing QEMU may pass through, as allowed transitions (query-status names).
SOURCE_TRANSITIONS: dict[str, frozenset[str]] = {
    "running": frozenset({"finish-migrate", "paused", "postmigrate"}),
    "paused": frozenset({"finish-migrate", "postmigrate"}),
    "finish-migrate": frozenset({"postmigrate"}),
    "postmigrate": frozenset(),
}
DESTINATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "inmigrate": frozenset({"running"}),
    "running": frozenset(),
}


def _arrow(states: list[str]) -> str:
    return " → ".join(states) if states else "(none)"


def _sequence_problem(
    states: list[str], transitions: dict[str, frozenset[str]], first: str, last: set[str] | None
) -> str | None:
    """Why ``states`` is not a walk from ``first`` through ``transitions`` ending in ``last`` (None = ok)."""
    if not states:
        return "no runstate recorded"
    if states[0] != first:
        return f"starts {states[0]!r}, expected {first!r}"
    for i, (a, b) in enumerate(zip(states, states[1:], strict=False), start=1):
        if b not in transitions.get(a, frozenset()):
            return f"unexpected transition {a} → {b} (#{i} in {_arrow(states)})"
    if last is not None and states[-1] not in last:
        return f"ends {states[-1]!r}, expected {' or '.join(sorted(last))}"
    return None


def check_runstates(obs: Observation) -> Check:
    src, dst = obs.source.runstates, obs.destination.runstates if obs.destination else []
    if obs.mode is Mode.BOOT:
        problem = ""
        if not src:
            problem = "source: no runstate recorded"
        elif any(s != "running" for s in src):
            problem = f"source left running: {_arrow(src)}"
        return passed_if(
            "runstates", not problem, "source: running throughout", problem or f"source: {_arrow(src)}"
        )
    if obs.mode is Mode.CPR_EXEC:  # the old QEMU execs the new one: its sequence just stops once migrated
        src_rule = "source (old QEMU): running → … (it execs the new QEMU)"
        src_problem = _sequence_problem(src, SOURCE_TRANSITIONS, "running", None)
    else:
        src_rule = "source: running → … → postmigrate"
        src_problem = _sequence_problem(src, SOURCE_TRANSITIONS, "running", {"postmigrate"})
    dst_problem = _sequence_problem(dst, DESTINATION_TRANSITIONS, "inmigrate", {"running"})
    if obs.destination is None:
        dst_problem = "no destination recorded"
    problems = [f"{side}: {p}" for side, p in (("source", src_problem), ("destination", dst_problem)) if p]
    seen = f"source: {_arrow(src)}; destination: {_arrow(dst)}"
    return passed_if(
        "runstates",
        not problems,
        f"{src_rule}; destination: inmigrate → running",
        "; ".join(problems) or seen,
        seen if problems else "",
    )


def check_process_hygiene(obs: Observation) -> Check:
    problems: list[str] = []
    src, dst = obs.source, obs.destination
    old_must_quit = obs.mode in (Mode.NORMAL, Mode.CPR_REBOOT, Mode.CPR_TRANSFER)
    if old_must_quit and src.exit_code is None:
        problems.append("source QEMU still alive after migration")
    sides = [("source", src)] + ([("destination", dst)] if dst else [])
    for side, o in sides:
        if o.exit_code not in (None, 0):
            problems.append(f"{side} exited with {describe_exit(o.exit_code)}")
    if obs.mode is not Mode.BOOT:
        if src.resumed_after_migration:
            problems.append("source ran again after its migration completed")
        completed = False
        for ev in src.events:
            if ev.get("event") == "MIGRATION" and (ev.get("data") or {}).get("status") == "completed":
                completed = True
            elif ev.get("event") == "RESUME" and completed:
                problems.append("source emitted RESUME after MIGRATION completed")
                break
    zombies = [p for p in obs.leftover_processes if "defunct" in p or p.split()[-1:] == ["Z"]]
    if obs.leftover_processes:
        kind = f" ({len(zombies)} defunct)" if zombies else ""
        problems.append(f"leftover processes{kind}: {'; '.join(obs.leftover_processes[:5])}")
    expected = (
        "old QEMU quit (exit 0), " if old_must_quit else ""
    ) + "no resume after migration, no leftovers"
    codes = ", ".join(
        f"{s} exit {'alive' if o.exit_code is None else describe_exit(o.exit_code)}" for s, o in sides
    )
    return passed_if(
        "process-hygiene", not problems, expected, "; ".join(problems) or f"{codes}; no leftovers"
    )
