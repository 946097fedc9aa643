"""The harness's work, as public functions: select cells, build, test, report, detect.

matrix -> cells -> sources/patches -> build (in a container) -> artifacts -> scenarios -> results ->
reports. The CLI (:mod:`harness.cli`) parses arguments into :class:`RunOptions` and calls these; the
tests call them too. Results are stored as soon as each cell is known, so an interruption loses nothing
already finished; ``say`` receives every line of progress (the CLI prints it).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from harness.build import triage
from harness.build.builder import Builder, BuildOutcome
from harness.build.guest import GuestBundle, assemble_guest
from harness.build.remedy import RemedyNotApplicable, derived_cell
from harness.config import cells as mx
from harness.config.cimatrix import ci_matrix
from harness.config.matrix import load_matrix
from harness.config.repo import CACHE_DIR, DEFAULT_MATRIX, PATCHES_DIR, REPO_ROOT, REPORTS_DIR
from harness.config.schema import Matrix
from harness.engine.containers import Engine
from harness.errors import ConfigError, InfraError
from harness.live.result import ScenarioResult
from harness.report import console
from harness.report.merge import merge_runs
from harness.report.render import RenderSummary, render_run
from harness.run.runner import CellPlan, run_cell
from harness.store.runs import RunStore, new_run_id, update_latest

Say = Callable[[str], None]


@dataclass
class RunOptions:
    """What ``build`` and ``test`` are asked to do (the CLI's options, with the same defaults)."""

    matrix: Path = DEFAULT_MATRIX
    cells: list[str] = field(default_factory=list)
    cache: Path = CACHE_DIR
    reports: Path = REPORTS_DIR
    run_id: str | None = None
    build_jobs: int | None = None  # ninja -j (default: the matrix's settings.build_jobs, else cores)
    remedy: str = "off"  # "auto": retry a failed build once with its triage remedy
    jobs: int = 1  # scenario cells at once


@dataclass
class Selection:
    matrix: Matrix
    builds: list[mx.BuildCell]
    scenarios: list[mx.ScenarioCell]


@dataclass
class BuildRun:
    store: RunStore
    outcomes: dict[str, BuildOutcome]

    @property
    def failed(self) -> list[str]:
        return [cid for cid, out in self.outcomes.items() if not out.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass
class TestRun:
    builds: BuildRun
    results: list[ScenarioResult]

    @property
    def exit_code(self) -> int:
        bad = [r for r in self.results if not r.verdict.ok]
        return 1 if bad or self.builds.failed else 0


def select(matrix: Path, patterns: list[str]) -> Selection:
    """Load ``matrix`` and select cells by fnmatch ``patterns`` (ConfigError naming the file otherwise)."""
    m = load_matrix(matrix, repo_root=REPO_ROOT)
    builds, scenarios = mx.select(m, patterns)
    return Selection(m, builds, scenarios)


def list_lines(sel: Selection) -> list[str]:
    """``python -m harness list``: the expanded cells, one per line."""
    counts = f"{len(sel.builds)} build cell(s), {len(sel.scenarios)} scenario cell(s)"
    out = [f"# {mx.display_path(sel.matrix.path)}: {counts}"]
    out += [f"build    {c.id}  [{c.tree.kind}, image {c.tree.image}]" for c in sel.builds]
    out += [f"scenario {c.id}" + (f"  (target {c.target.id})" if c.target else "") for c in sel.scenarios]
    return out


def job_matrix(sel: Selection, fmt: str) -> str:
    """The selected cells as a CI system's job matrix (github, gitlab or json)."""
    return ci_matrix(sel.matrix, sel.scenarios, sel.builds, fmt)


def reproduce_command(matrix: Path, cell_id: str) -> str:
    """The command that reruns one cell from any clone of the repository."""
    try:
        shown = str(Path(matrix).resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(matrix)
    return shlex.join(["nox", "-s", "test", "--", "--matrix", shown, "--cells", cell_id])


def open_store(reports: Path, run_id: str | None) -> RunStore:
    run_id = run_id or new_run_id()
    root = reports / run_id
    root.mkdir(parents=True, exist_ok=True)
    update_latest(reports, run_id)
    return RunStore(root)


def _builder(options: RunOptions, matrix: Matrix, engine: Engine, say: Say) -> Builder:
    options.cache.mkdir(parents=True, exist_ok=True)
    jobs = options.build_jobs or matrix.settings.build_jobs
    return Builder(engine, options.cache.resolve(), PATCHES_DIR, matrix.path.parent, jobs=jobs, progress=say)


def _build_one(builder: Builder, store: RunStore, cell: mx.BuildCell, say: Say) -> BuildOutcome:
    """Build one cell, store its record, then triage a failure (and store the record again)."""
    outcome = builder.build(cell)
    store.save_build(outcome.record, cell.id)
    if not outcome.ok:
        triage.annotate(
            outcome.record, outcome.failure_output, builder.engine.containers_dir, cell.tree.image
        )
        outcome.save_record()
        store.save_build(outcome.record, cell.id)
    for line in console.build_lines(cell.id, outcome.record):
        say(line)
    return outcome


def _remedy(
    builder: Builder, store: RunStore, cell: mx.BuildCell, failed: BuildOutcome, say: Say
) -> BuildOutcome:
    """--remedy auto: retry ``cell`` once as ``<tree>/<profile>+<remedy>`` with the triage change applied.

    Both records stay in the run (``remedy_attempt`` on the failed one, ``remedy_of`` on the retry). The
    retry's outcome stands in for the cell (its scenarios run on it) when it passes."""
    found = failed.record.triage
    change = found.change if found else None
    if not change or cell.profile is None:
        return failed
    try:
        retry_cell = derived_cell(cell, change)
    except RemedyNotApplicable as exc:
        say(f"  remedy for {cell.id} not applicable: {exc}")
        failed.record.remedy_attempt = {"cell": None, "change": change, "reason": str(exc)}
        store.save_build(failed.record, cell.id)
        return failed
    assert retry_cell.profile is not None and found is not None
    say(f"  remedy: retrying {cell.id} as {retry_cell.id} ({' '.join(retry_cell.profile.configure)})")
    retry = _build_one(builder, store, retry_cell, say)
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
    if retry.ok:
        say(f"  REMEDIED {cell.id} -> {retry_cell.id}: make it permanent in profile {cell.profile_name}")
        return retry
    return failed


def run_builds(
    builder: Builder, store: RunStore, cells: list[mx.BuildCell], remedy: str = "off", say: Say = print
) -> dict[str, BuildOutcome]:
    """Build each cell (in order), storing every record; with ``remedy="auto"`` retry failures once."""
    outcomes: dict[str, BuildOutcome] = {}
    for number, cell in enumerate(cells, start=1):
        say(f"[build {number}/{len(cells)}] {cell.id}")
        outcome = _build_one(builder, store, cell, say)
        if not outcome.ok and remedy == "auto":
            outcome = _remedy(builder, store, cell, outcome, say)
        outcomes[cell.id] = outcome
    return outcomes


def render(
    run_dir: Path, expected: list[str] | None = None, baseline: Path | None = None, say: Say = print
) -> RenderSummary:
    summary = render_run(run_dir, baseline=baseline, expected_cells=expected or [])
    say(summary.console)
    return summary


def build(options: RunOptions, say: Say = print) -> BuildRun:
    """``build``: every selected build cell, records in a run folder, then the report."""
    sel = select(options.matrix, options.cells)
    store = open_store(options.reports, options.run_id)  # a reports folder problem shows before the engine's
    engine = Engine.connect(progress=say)
    engine.remove_orphans()
    outcomes = run_builds(_builder(options, sel.matrix, engine, say), store, sel.builds, options.remedy, say)
    run = BuildRun(store, outcomes)
    remedied = [cid for cid, out in outcomes.items() if out.ok and out.cell_id != cid]
    render(store.root, say=say)
    say(
        f"builds: {len(outcomes) - len(run.failed)} passed ({len(remedied)} after a remedy), "
        f"{len(run.failed)} failed  (records: {mx.display_path(store.root)})"
    )
    return run


def test(options: RunOptions, say: Say = print) -> TestRun:
    """``test``: builds (cache hits are not rebuilt), then every selected scenario cell, then the report.

    KeyboardInterrupt propagates after the report of what finished was rendered (the rest ``not run``)."""
    sel = select(options.matrix, options.cells)
    store = open_store(options.reports, options.run_id)
    engine = Engine.connect(progress=say)
    engine.remove_orphans()
    outcomes = run_builds(_builder(options, sel.matrix, engine, say), store, sel.builds, options.remedy, say)
    guest, guest_error = _guest(sel, engine, options.cache, say)
    started = time.monotonic()
    done: list[ScenarioResult] = []
    expected = [c.id for c in sel.scenarios]

    def one(cell: mx.ScenarioCell) -> ScenarioResult:
        reproduce = reproduce_command(options.matrix, cell.id)
        source = outcomes[cell.build.id]
        target = outcomes[cell.target.id] if cell.target else None
        broken = [o for o in (source, target) if o is not None and not o.ok]
        if broken or source.artifact is None:
            stage = broken[0].record.stage if broken else "?"
            why = f"build {(broken or [source])[0].cell_id} did not pass ({stage}): no QEMU to run"
            result = ScenarioResult.error(cell.id, why)
            result.reproduce = reproduce
            store.save_scenario(result)
            return result
        if cell.machine.guest == "linux" and guest is None:
            result = ScenarioResult.error(cell.id, f"no Linux guest: {guest_error}", infra=True)
            result.reproduce, result.machine = reproduce, cell.machine_name
            store.save_scenario(result)
            return result
        plan = CellPlan(cell, source.artifact, target.artifact if target else None, reproduce, guest)
        return run_cell(engine, plan, store, sel.matrix.settings)

    def finished(result: ScenarioResult) -> None:
        done.append(result)
        say(console.cell_line(result, len(done), len(sel.scenarios)))

    try:
        if options.jobs <= 1:
            for cell in sel.scenarios:
                say(f"  running {cell.id}")
                finished(one(cell))
        else:
            with ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="cell") as pool:
                futures = [pool.submit(one, cell) for cell in sel.scenarios]
                try:
                    for future in as_completed(futures):
                        finished(future.result())
                except KeyboardInterrupt:
                    pool.shutdown(wait=True, cancel_futures=True)  # running cells finish and clean up
                    raise
    except KeyboardInterrupt:
        render(store.root, expected, say=say)  # what finished is in the store; the rest is "not run"
        raise
    order = {cell.id: n for n, cell in enumerate(sel.scenarios)}
    results = sorted(done, key=lambda r: order[r.cell_id])
    store.write_summary(expected)
    for line in console.cells_table(results, time.monotonic() - started, mx.display_path(store.root)):
        say(line)
    render(store.root, expected, say=say)
    return TestRun(BuildRun(store, outcomes), results)


def _guest(sel: Selection, engine: Engine, cache: Path, say: Say) -> tuple[GuestBundle | None, str]:
    """The assembled Linux guest when a selected cell needs it (cached); else None and why not."""
    if not any(c.machine.guest == "linux" for c in sel.scenarios):
        return None, "no selected cell needs it"
    try:
        return assemble_guest(engine, cache.resolve(), say), ""
    except InfraError as exc:
        say(f"guest: {exc.message}")
        return None, exc.message


def report(
    reports: Path,
    run: str = "latest",
    baseline: Path | None = None,
    merge: list[Path] | None = None,
    say: Say = print,
) -> RenderSummary:
    """``report``: render from stored results only (no Docker, no QEMU); ``merge`` CI shards first."""
    if merge:
        dest = reports / new_run_id()
        merged = merge_runs(list(merge), dest)
        for note in merged.notes:
            say(note)
        update_latest(reports, dest.name)
        run_dir = dest
    else:
        run_dir = reports / run
        if not run_dir.is_dir():
            raise ConfigError(
                f"no run folder {run_dir}", hint="run `nox -s build test` first, or pass --run NAME"
            )
        run_dir = run_dir.resolve()
    return render(run_dir, baseline=baseline, say=say)


def exit_code_of(summary: RenderSummary) -> int:
    return 0 if summary.ok else 1
