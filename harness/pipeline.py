"""The harness's work, as public functions: select cells, build, test, report, detect.

matrix -> cells -> sources/patches -> build (in a container) -> artifacts -> scenarios -> results ->
reports. The CLI (:mod:`harness.cli`) parses arguments into :class:`RunOptions` and calls these; the
tests call them too. Results are stored as soon as each cell is known, so an interruption loses nothing
already finished; ``say`` receives every line of progress (the CLI prints it).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.build.batch import run_builds
from harness.build.builder import Builder, BuildOutcome
from harness.build.guest import GuestBundle, assemble_guest
from harness.build.sources import fetch_tree
from harness.build.subproject_store import SubprojectStore
from harness.config import cells as mx
from harness.config.matrix import load_matrix
from harness.config.repo import CACHE_DIR, DEFAULT_MATRIX, PATCHES_DIR, REPO_ROOT, REPORTS_DIR
from harness.config.schema import Matrix
from harness.engine.containers import Engine, Limits
from harness.errors import ConfigError, InfraError
from harness.live.result import ScenarioResult
from harness.report import console
from harness.report.render import RenderSummary, render_run
from harness.report.trends import DEFAULT_WINDOW
from harness.run.runner import CellPlan, run_cell
from harness.store.runs import Plan, RunStore, is_run_dir, new_run_id, update_latest

Say = Callable[[str], None]


@dataclass
class RunOptions:
    """What ``build`` and ``test`` are asked to do (the CLI's options, with the same defaults)."""

    matrix: Path = DEFAULT_MATRIX
    cells: list[str] = field(default_factory=list)
    cache: Path = CACHE_DIR
    reports: Path = REPORTS_DIR
    run_id: str | None = None
    build_jobs: int | None = None  # ninja -j budget (default: the matrix's settings.build_jobs, else cores)
    parallel_builds: int | None = None  # build cells at once (None: one per 4 jobs of the budget)
    remedy: str = "off"  # "auto": retry a failed build once with its triage remedy
    jobs: int = 1  # scenario cells at once
    history: int = DEFAULT_WINDOW  # runs the report's trends cover (this one included)
    repeat: int = 1  # each scenario cell this many times in its container (pause samples)
    bisect: str = "off"  # "auto": bisect the regressions since the baseline run (harness.bisect.auto)
    bisect_steps: int = 12  # the step budget of all those bisections
    bisect_runs: int = 3  # runs of a cell per bisection step


@dataclass
class Selection:
    matrix: Matrix
    builds: list[mx.BuildCell]
    scenarios: list[mx.ScenarioCell]


@dataclass
class BuildRun:
    store: RunStore
    outcomes: dict[str, BuildOutcome]
    report: RenderSummary | None = None  # the run folder's report, rendered at the end

    @property
    def failed(self) -> list[str]:
        return [cid for cid, out in self.outcomes.items() if not out.ok]

    @property
    def exit_code(self) -> int:
        """1 when a build failed, or when the run's report shows anything that did not pass."""
        return 1 if self.failed or (self.report is not None and not self.report.ok) else 0


@dataclass
class TestRun:
    builds: BuildRun
    results: list[ScenarioResult]
    report: RenderSummary | None = None

    @property
    def exit_code(self) -> int:
        """1 when a cell or build did not pass, or when the run's report shows anything that did not."""
        bad = [r for r in self.results if not r.verdict.ok]
        shown_bad = self.report is not None and not self.report.ok
        return 1 if bad or self.builds.failed or shown_bad else 0


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
    from harness.config.cimatrix import ci_matrix  # only this command needs it (start-up time)

    return ci_matrix(sel.matrix, sel.scenarios, sel.builds, fmt)


def reproduce_command(matrix: Path, cell_id: str) -> str:
    """The command that reruns one cell from any clone of the repository."""
    try:
        shown = str(Path(matrix).resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(matrix)
    return shlex.join(["nox", "-s", "test", "--", "--matrix", shown, "--cells", cell_id])


def check_run_name(name: str, option: str = "--run-id") -> str:
    """A run folder name: one plain name under the reports folder (no ``/``, not ``.`` or ``..``)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith("-"):
        raise ConfigError(
            f"{option} {name!r}: not a run folder name (one name under the reports folder)",
            hint="pass the name of a folder under --reports, e.g. 20261126T130501Z or latest",
        )
    return name


def plan_of(sel: Selection, command: str, scenarios: bool) -> Plan:
    """The plan a ``build`` (``scenarios=False``) or ``test`` writes before any work starts."""
    return Plan(
        builds=[c.id for c in sel.builds],
        scenarios=[c.id for c in sel.scenarios] if scenarios else [],
        commands=[command],
        matrix=mx.display_path(sel.matrix.path),
        started_at=new_run_id(),
    )


def open_store(reports: Path, run_id: str | None, plan: Plan, say: Say = print) -> RunStore:
    """The run folder for ``plan`` (its ``plan.json`` written first), and ``latest`` pointed at it."""
    store, note = RunStore.open(reports, check_run_name(run_id) if run_id is not None else None, plan)
    if note:
        say(note)
    update_latest(reports, store.run_id)
    return store


def _builder(options: RunOptions, matrix: Matrix, engine: Engine, say: Say) -> Builder:
    options.cache.mkdir(parents=True, exist_ok=True)
    jobs = options.build_jobs or matrix.settings.build_jobs
    limits = Limits(memory_mb=matrix.settings.build_memory_mb, pids=matrix.settings.pids_limit)
    return Builder(
        engine,
        options.cache.resolve(),
        PATCHES_DIR,
        matrix.path.parent,
        jobs=jobs,
        progress=say,
        limits=limits,
    )


@contextmanager
def _report_on_interrupt(store: RunStore, say: Say) -> Iterator[None]:
    """Ctrl-C: render what the run folder holds (planned cells not finished show ``not run``), re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        render(store.root, say=say)
        raise


def _auto_bisect(
    options: RunOptions, sel: Selection, store: RunStore, engine: Engine, summary: RenderSummary,
    expected: list[str], say: Say,
) -> RenderSummary:  # fmt: skip
    """``--bisect auto``: the run's regressions bisected (harness.bisect.auto), the run rendered again."""
    from harness.bisect.auto import after_run  # only --bisect auto needs it (start-up time)

    return after_run(store.root, summary, sel.matrix, _builder(options, sel.matrix, engine, say),
                     options.bisect_steps, options.bisect_runs, expected, options.history, say)  # fmt: skip


def render(
    run_dir: Path,
    expected: list[str] | None = None,
    baseline: Path | None = None,
    say: Say = print,
    window: int = DEFAULT_WINDOW,
) -> RenderSummary:
    summary = render_run(run_dir, baseline=baseline, expected_cells=expected or [], window=window)
    say(summary.console)
    return summary


def _engine_and_builds(
    options: RunOptions, sel: Selection, store: RunStore, say: Say
) -> tuple[Engine, dict[str, BuildOutcome]]:
    """Connect (locks in the cache), remove what killed runs left, then build every selected cell."""
    engine = Engine.connect(progress=say, lock_dir=options.cache / "locks")
    engine.remove_orphans()
    builder = _builder(options, sel.matrix, engine, say)
    return engine, run_builds(builder, store, sel.builds, options.remedy, say, options.parallel_builds)


def build(options: RunOptions, say: Say = print) -> BuildRun:
    """``build``: every selected build cell, records in a run folder, then the report."""
    sel = select(options.matrix, options.cells)
    # the plan is written first: a reports folder problem shows before the engine's, and a run that
    # stops at any point still shows every cell it set out to do
    store = open_store(options.reports, options.run_id, plan_of(sel, "build", scenarios=False), say)
    with _report_on_interrupt(store, say):
        engine, outcomes = _engine_and_builds(options, sel, store, say)
    run = BuildRun(store, outcomes)
    remedied = [cid for cid, out in outcomes.items() if out.ok and out.cell_id != cid]
    run.report = render(store.root, say=say, window=options.history)
    if options.bisect == "auto":
        run.report = _auto_bisect(options, sel, store, engine, run.report, [], say)
    say(
        f"builds: {len(outcomes) - len(run.failed)} passed ({len(remedied)} after a remedy), "
        f"{len(run.failed)} failed  (records: {mx.display_path(store.root)})"
    )
    return run


def test(options: RunOptions, say: Say = print) -> TestRun:
    """``test``: builds (cache hits are not rebuilt), then every selected scenario cell, then the report.

    KeyboardInterrupt propagates after the report of what finished was rendered (the rest ``not run``);
    with ``jobs > 1`` the running cells' containers are removed at once (their cells show ``not run``)."""
    sel = select(options.matrix, options.cells)
    store = open_store(options.reports, options.run_id, plan_of(sel, "test", scenarios=True), say)
    with _report_on_interrupt(store, say):
        engine, outcomes = _engine_and_builds(options, sel, store, say)
        return _scenarios(options, sel, store, engine, outcomes, say)


def _scenarios(
    options: RunOptions,
    sel: Selection,
    store: RunStore,
    engine: Engine,
    outcomes: dict[str, BuildOutcome],
    say: Say,
) -> TestRun:
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
            result.reproduce, result.machine, result.migration = (
                reproduce,
                cell.machine_name,
                cell.migration_name,
            )
            store.save_scenario(result)
            return result
        plan = CellPlan(cell, source.artifact, target.artifact if target else None, reproduce, guest)
        return run_cell(engine, plan, store, sel.matrix.settings, repeat=options.repeat)

    def finished(result: ScenarioResult) -> None:
        done.append(result)
        say(console.cell_line(result, len(done), len(sel.scenarios)))

    if options.jobs <= 1:
        for cell in sel.scenarios:
            say(f"  running {cell.id}")
            finished(one(cell))
    else:
        pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="cell")
        try:
            futures = [pool.submit(one, cell) for cell in sel.scenarios]
            for future in as_completed(futures):
                finished(future.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)  # queued cells never start
            engine.stop()  # running cells' containers go now; their threads end with Stopped
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    order = {cell.id: n for n, cell in enumerate(sel.scenarios)}
    results = sorted(done, key=lambda r: order[r.cell_id])
    store.write_summary(expected)
    for line in console.cells_table(results, time.monotonic() - started, mx.display_path(store.root)):
        say(line)
    summary = render(store.root, expected, say=say, window=options.history)
    if options.bisect == "auto":
        summary = _auto_bisect(options, sel, store, engine, summary, expected, say)
    return TestRun(BuildRun(store, outcomes, summary), results, summary)


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
    expected: Selection | None = None,
    say: Say = print,
    window: int = DEFAULT_WINDOW,
) -> RenderSummary:
    """``report``: render from stored results only (no Docker, no QEMU); ``merge`` CI shards first.

    ``expected`` (with ``merge``): the cells the merged run must account for; those no shard holds
    (a shard that never arrived) show as ``not run``."""
    if merge:
        from harness.report.merge import merge_runs  # only this command needs it (start-up time)

        dest = RunStore.create(reports).root
        plan = plan_of(expected, "merge", scenarios=True) if expected is not None else None
        merged = merge_runs(list(merge), dest, plan)
        for note in merged.notes:
            say(note)
        update_latest(reports, dest.name)
        run_dir = dest
    else:
        run_dir = reports / check_run_name(run, "--run")
        if not run_dir.is_dir():
            raise ConfigError(
                f"no run folder {run_dir}", hint="run `nox -s build test` first, or pass --run NAME"
            )
        run_dir = run_dir.resolve()
        if not is_run_dir(run_dir):
            raise ConfigError(
                f"{run_dir} holds no run (no plan.json, results/ or builds/)",
                hint="pass the name of a folder that `build` or `test` wrote",
            )
    return render(run_dir, baseline=baseline, say=say, window=window)


def store_lines(cache: Path) -> list[str]:
    """``python -m harness store list``: what the subproject store holds."""
    entries = SubprojectStore(cache.resolve()).entries()
    out = [f"# subproject store {cache / 'store'}: {len(entries)} folder(s)"]
    for e in entries:
        pin = e.revision[:12] if e.revision else "-"
        out.append(
            f"{e.name:24} {pin:12} {e.digest[7:23]}  QEMU {e.qemu_version:10} {e.files:5} files  {e.origin}"
        )
    return out


def store_add(options: RunOptions, trees: list[str], say: Say = print) -> int:
    """``python -m harness store add``: fetch matrix trees (no build) and keep their folders in the store."""
    m = load_matrix(options.matrix, repo_root=REPO_ROOT)
    names = trees or [n for n, t in m.trees.items() if t.kind != "prebuilt"]
    unknown = [n for n in names if n not in m.trees or m.trees[n].kind == "prebuilt"]
    if unknown:
        built = ", ".join(n for n, t in m.trees.items() if t.kind != "prebuilt")
        raise ConfigError(
            f"{mx.display_path(m.path)}: no fetchable tree {', '.join(unknown)}", hint=f"trees: {built}"
        )
    options.cache.mkdir(parents=True, exist_ok=True)
    cache = options.cache.resolve()
    engine = Engine.connect(progress=say)
    store = SubprojectStore(cache)
    for name in names:
        tree = m.trees[name]
        record = fetch_tree(name, tree, cache, engine=engine, base_dir=m.path.parent, progress=say)
        added = store.harvest(record, say)
        say(f"store: tree {name}: {len(added)} new folder(s)")
    return 0


def exit_code_of(summary: RenderSummary) -> int:
    return 0 if summary.ok else 1
