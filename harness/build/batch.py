"""Building several cells: each build's record stored at once, triage after a failure, ``--remedy auto``
retries, and cells built side by side under one CPU budget.

The pipeline calls :func:`run_builds`; every record reaches the run folder as soon as it is known.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from harness.build.builder import Builder, BuildOutcome
from harness.build.incremental import Seed
from harness.build.remedy import RemedyNotApplicable, derived_cell
from harness.config import cells as mx
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

Say = Callable[[str], None]


def outcome_lines(cell_id: str, record: BuildRecord) -> list[str]:
    """A build's outcome: one line when it passed; else stage, error, log tail, fix, cause, remedy."""
    if record.ok:
        how = "cache hit" if record.cache_hit else f"{record.durations.get('total_s', 0):.0f}s"
        return [f"  pass  {cell_id}  ({how}) {record.qemu_version or ''}"]
    out = [f"  {str(record.verdict).upper()}  {cell_id}  stage {record.stage}: {record.error or ''}"]
    out += [f"    | {line}" for line in record.log_tail[-12:]]
    if record.hint:
        out.append(f"    fix: {record.hint}")
    if record.triage and record.triage.cause:
        out.append(f"    cause: {record.triage.cause}")
    if record.triage and record.triage.remedy:
        out.append(f"    remedy: {record.triage.remedy}")
    return out


def build_one(
    builder: Builder, store: RunStore, cell: mx.BuildCell, say: Say, seed: Seed | None = None
) -> BuildOutcome:
    """Build one cell, store its record, then triage a failure (and store the record again). ``seed``: see
    :meth:`Builder.build` (bisection steps)."""
    outcome = builder.build(cell) if seed is None else builder.build(cell, seed)
    store.save_build(outcome.record, cell.id)
    if not outcome.ok:
        from harness.build import triage  # only failures need it (start-up time)

        triage.annotate(
            outcome.record, outcome.failure_output, builder.engine.containers_dir, cell.tree.image
        )
        outcome.save_record()
        store.save_build(outcome.record, cell.id)
    for line in outcome_lines(cell.id, outcome.record):
        say(line)
    return outcome


MAX_REMEDIES = 3  # an old export may need several: its submodules, then a configure flag it lacks, ...


def _retry(
    builder: Builder, store: RunStore, cell: mx.BuildCell, failed: BuildOutcome, say: Say
) -> tuple[mx.BuildCell, BuildOutcome] | None:
    """Retry ``cell`` once as ``<tree>/<profile>+<remedy>`` with its triage change applied; None when
    there is no applicable change. Both records stay in the run (``remedy_attempt`` on the failed one,
    ``remedy_of`` on the retry)."""
    found = failed.record.triage
    change = found.change if found else None
    if not change or cell.profile is None:
        return None
    try:
        retry_cell = derived_cell(cell, change)
    except RemedyNotApplicable as exc:
        say(f"  remedy for {cell.id} not applicable: {exc}")
        failed.record.remedy_attempt = {"cell": None, "change": change, "reason": str(exc)}
        store.save_build(failed.record, cell.id)
        return None
    assert retry_cell.profile is not None and found is not None
    say(f"  remedy: retrying {cell.id} as {retry_cell.id} ({' '.join(retry_cell.profile.configure)})")
    retry = build_one(builder, store, retry_cell, say)
    retry.record.remedy_of = {
        "cell": cell.id,
        "rule": found.rule,
        "cause": found.cause,
        "change": change,
        "configure_before": [*cell.profile.configure],
    }
    failed.record.remedy_attempt = {
        "cell": retry_cell.id,
        "verdict": str(retry.record.verdict),
        "change": change,
        "configure": [*retry_cell.profile.configure],
    }
    store.save_build(retry.record, retry_cell.id)
    store.save_build(failed.record, cell.id)
    return retry_cell, retry


def _remedy(
    builder: Builder, store: RunStore, cell: mx.BuildCell, failed: BuildOutcome, say: Say
) -> BuildOutcome:
    """--remedy auto: retry with the triage change applied, and again with the next failure's change,
    up to :data:`MAX_REMEDIES` retries (``<tree>/<profile>+a``, ``<tree>/<profile>+a+b``, ...). The
    first retry that passes stands in for the cell (its scenarios run on it)."""
    current_cell, current = cell, failed
    for _ in range(MAX_REMEDIES):
        step = _retry(builder, store, current_cell, current, say)
        if step is None:
            break
        current_cell, current = step
        if current.ok:
            say(
                f"  REMEDIED {cell.id} -> {current_cell.id}: make it permanent in profile {cell.profile_name}"
            )
            return current
    return failed


def build_slots(budget: int, cells: int, parallel: int | None) -> tuple[int, int]:
    """(builds at once, ninja jobs each) for ``cells`` build cells under a budget of ``budget`` jobs.

    ``parallel`` None is automatic: one build per 4 jobs of the budget (2 cores: one at a time with
    -j2; 16: four at once with -j4 each). Never more builds than jobs, nor than cells."""
    wanted = max(1, budget // 4) if parallel is None else max(1, parallel)
    slots = max(1, min(wanted, cells, budget))
    return slots, max(1, budget // slots)


def run_builds(
    builder: Builder,
    store: RunStore,
    cells: list[mx.BuildCell],
    remedy: str = "off",
    say: Say = print,
    parallel: int | None = 1,
) -> dict[str, BuildOutcome]:
    """Build every cell, storing every record; with ``remedy="auto"`` retry failures with their triage
    remedies (see :func:`_remedy`).

    Several cells build at once when :func:`build_slots` says so (the builder's ``jobs`` is the budget
    they share); their lines are then prefixed with the cell id. Ctrl-C removes every container of
    this run, so that the building threads end at once."""
    slots, share = build_slots(builder.jobs, len(cells), parallel)
    outcomes: dict[str, BuildOutcome] = {}

    def one(number: int, cell: mx.BuildCell) -> BuildOutcome:
        talk = say if slots == 1 else (lambda line: say(f"[{cell.id}] {line.strip()}"))
        mine = builder if slots == 1 else builder.share(share, talk)
        talk(f"[build {number}/{len(cells)}] {cell.id}" + (f" (-j{share})" if slots > 1 else ""))
        outcome = build_one(mine, store, cell, talk)
        if not outcome.ok and remedy == "auto":
            outcome = _remedy(mine, store, cell, outcome, talk)
        return outcome

    if slots == 1:
        for number, cell in enumerate(cells, start=1):
            outcomes[cell.id] = one(number, cell)
        return outcomes
    say(f"building {len(cells)} cells, {slots} at a time, -j{share} each (budget {builder.jobs} jobs)")
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="build") as pool:
        futures = {pool.submit(one, n, cell): cell for n, cell in enumerate(cells, start=1)}
        try:
            for future in as_completed(futures):
                outcomes[futures[future].id] = future.result()
        except KeyboardInterrupt:
            builder.engine.remove_own()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {cell.id: outcomes[cell.id] for cell in cells}
