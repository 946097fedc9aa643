"""The work behind each CLI command: matrix -> cells -> builds -> scenarios -> run store.

Each function takes the parsed arguments and returns the process exit code. Results are stored as soon
as each cell is known, so an interruption loses nothing already finished.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from harness import matrix as mx
from harness.build import Builder, BuildOutcome
from harness.cimatrix import ci_matrix
from harness.containers import Engine
from harness.errors import ConfigError
from harness.merge import merge_runs
from harness.remedy import RemedyNotApplicable, derived_cell
from harness.report import render_run
from harness.results import RunStore, ScenarioResult, new_run_id, update_latest
from harness.runner import CellPlan, run_cell

REPO_ROOT = Path(__file__).resolve().parent.parent
OK_VERDICTS = {"pass", "unsupported"}


def _say(text: str) -> None:
    print(text, flush=True)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _selection(args: argparse.Namespace) -> tuple[mx.Matrix, list[mx.BuildCell], list[mx.ScenarioCell]]:
    matrix = mx.load_matrix(args.matrix, repo_root=REPO_ROOT)
    builds, scenarios = mx.select(matrix, args.cells)
    return matrix, builds, scenarios


def list_cells(args: argparse.Namespace) -> int:
    matrix, builds, scenarios = _selection(args)
    _say(f"# {_rel(matrix.path)}: {len(builds)} build cell(s), {len(scenarios)} scenario cell(s)")
    for cell in builds:
        _say(f"build    {cell.id}  [{cell.tree.kind}, image {cell.tree.image}]")
    for cell in scenarios:
        extra = f"  (target {cell.target.id})" if cell.target else ""
        _say(f"scenario {cell.id}{extra}")
    return 0


def matrix(args: argparse.Namespace) -> int:
    """The selected cells as a CI job matrix (--format github|gitlab|json) on stdout."""
    m, builds, scenarios = _selection(args)
    sys.stdout.write(ci_matrix(m, scenarios, builds, args.format))
    return 0


def _store(args: argparse.Namespace) -> RunStore:
    run_id = args.run_id or new_run_id()
    root = args.reports / run_id
    root.mkdir(parents=True, exist_ok=True)
    update_latest(args.reports, run_id)
    return RunStore(root)


def _builder(args: argparse.Namespace, matrix: mx.Matrix, engine: Engine) -> Builder:
    args.cache.mkdir(parents=True, exist_ok=True)
    return Builder(
        engine,
        args.cache.resolve(),
        REPO_ROOT / "patches",
        matrix.path.parent,
        jobs=args.build_jobs or matrix.settings.build_jobs,
        progress=_say,
    )


def _say_build(cell_id: str, outcome: BuildOutcome) -> None:
    record = outcome.record
    if outcome.ok:
        how = "cache hit" if record.get("cache_hit") else f"{record['durations'].get('total_s', 0):.0f}s"
        _say(f"  pass  {cell_id}  ({how}) {record.get('qemu_version', '')}")
        return
    _say(
        f"  {record.get('verdict', 'fail').upper()}  {cell_id}  stage {record.get('stage')}: "
        f"{record.get('error', '')}"
    )
    for line in record.get("log_tail", [])[-12:]:
        _say(f"    | {line}")
    if record.get("hint"):
        _say(f"    fix: {record['hint']}")
    found = record.get("triage") or {}
    if found.get("cause"):
        _say(f"    cause: {found['cause']}")
    if found.get("remedy"):
        _say(f"    remedy: {found['remedy']}")


def _remedy(builder: Builder, store: RunStore, cell: mx.BuildCell, failed: BuildOutcome) -> BuildOutcome:
    """--remedy auto: retry ``cell`` once as ``<tree>/<profile>+<remedy>`` with the triage change applied.

    Both records stay in the run (``remedy_attempt`` on the failed one, ``remedy_of`` on the retry). The
    retry's outcome stands in for the cell (its scenarios run on it) when it passes."""
    found = failed.record.get("triage") or {}
    change = found.get("change")
    if not change or cell.profile is None:
        return failed
    try:
        retry_cell = derived_cell(cell, change)
    except RemedyNotApplicable as exc:
        _say(f"  remedy for {cell.id} not applicable: {exc}")
        failed.record["remedy_attempt"] = {"cell": None, "change": change, "reason": str(exc)}
        store.save_build(cell.id, failed.record)
        return failed
    assert retry_cell.profile is not None
    _say(f"  remedy: retrying {cell.id} as {retry_cell.id} ({' '.join(retry_cell.profile.configure)})")
    retry = builder.build(retry_cell)
    retry.record["remedy_of"] = {
        "cell": cell.id,
        "rule": found.get("rule"),
        "cause": found.get("cause"),
        "change": change,
        "configure_before": [*cell.profile.configure],
    }
    failed.record["remedy_attempt"] = {
        "cell": retry_cell.id,
        "verdict": retry.record.get("verdict"),
        "change": change,
        "configure": [*retry_cell.profile.configure],
    }
    store.save_build(retry_cell.id, retry.record)
    store.save_build(cell.id, failed.record)
    _say_build(retry_cell.id, retry)
    if retry.ok:
        _say(f"  REMEDIED {cell.id} -> {retry_cell.id}: make it permanent in profile {cell.profile_name}")
        return retry
    return failed


def _run_builds(
    builder: Builder, store: RunStore, cells: list[mx.BuildCell], remedy: str = "off"
) -> dict[str, BuildOutcome]:
    outcomes: dict[str, BuildOutcome] = {}
    for number, cell in enumerate(cells, start=1):
        _say(f"[build {number}/{len(cells)}] {cell.id}")
        outcome = builder.build(cell)
        store.save_build(cell.id, outcome.record)
        _say_build(cell.id, outcome)
        if not outcome.ok and remedy == "auto":
            outcome = _remedy(builder, store, cell, outcome)
        outcomes[cell.id] = outcome
    return outcomes


def build(args: argparse.Namespace) -> int:
    matrix, builds, _ = _selection(args)
    engine = Engine.connect(progress=_say)
    engine.remove_orphans()
    store = _store(args)
    outcomes = _run_builds(_builder(args, matrix, engine), store, builds, getattr(args, "remedy", "off"))
    failed = [cid for cid, out in outcomes.items() if not out.ok]
    remedied = [cid for cid, out in outcomes.items() if out.ok and out.cell_id != cid]
    _render(store.root)
    _say(
        f"builds: {len(outcomes) - len(failed)} passed ({len(remedied)} after a remedy), {len(failed)} failed"
        f"  (records: {_rel(store.root)})"
    )
    return 1 if failed else 0


def _reproduce(args: argparse.Namespace, cell: mx.ScenarioCell) -> str:
    return shlex.join(
        [sys.executable, "-m", "harness", "test", "--matrix", _rel(args.matrix), "--cells", cell.id]
    )


def test(args: argparse.Namespace) -> int:
    matrix, builds, scenarios = _selection(args)
    engine = Engine.connect(progress=_say)
    engine.remove_orphans()
    store = _store(args)
    outcomes = _run_builds(_builder(args, matrix, engine), store, builds, getattr(args, "remedy", "off"))
    started = time.monotonic()
    done: list[ScenarioResult] = []

    def one(cell: mx.ScenarioCell) -> ScenarioResult:
        source = outcomes[cell.build.id]
        target = outcomes[cell.target.id] if cell.target else None
        broken = [o for o in (source, target) if o is not None and not o.ok]
        if broken:
            why = f"build {broken[0].cell_id} did not pass ({broken[0].record.get('stage')}): no QEMU to run"
            result = ScenarioResult.error(cell.id, why)
            result.reproduce = _reproduce(args, cell)
            store.save_scenario(result)
            return result
        plan = CellPlan(cell, source.artifact, target.artifact if target else None, _reproduce(args, cell))
        return run_cell(engine, plan, store, matrix.settings)

    def report(result: ScenarioResult) -> None:
        done.append(result)
        first = result.reason.splitlines()[0] if result.reason else ""
        count = f"[{len(done)}/{len(scenarios)}]"
        _say(f"{count} {result.verdict.upper():<11} {result.cell_id}  {_pause(result)}{first}")

    try:
        if args.jobs <= 1:
            for cell in scenarios:
                _say(f"  running {cell.id}")
                report(one(cell))
        else:
            with ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="cell") as pool:
                futures = [pool.submit(one, cell) for cell in scenarios]
                try:
                    for future in as_completed(futures):
                        report(future.result())
                except KeyboardInterrupt:
                    pool.shutdown(wait=True, cancel_futures=True)  # running cells finish and clean up
                    raise
    except KeyboardInterrupt:
        # what finished is in the store; the report shows the rest as "not run"
        _render(store.root, [c.id for c in scenarios])
        raise
    order = {cell.id: n for n, cell in enumerate(scenarios)}
    results = sorted(done, key=lambda r: order[r.cell_id])
    store.write_summary([c.id for c in scenarios])
    _print_table(results, time.monotonic() - started, store)
    _render(store.root, [c.id for c in scenarios])
    bad = [r for r in results if r.verdict not in OK_VERDICTS]
    build_bad = [o for o in outcomes.values() if not o.ok]
    return 1 if bad or build_bad else 0


def _pause(result: ScenarioResult) -> str:
    pause = result.timings.get("pause_ms")
    return f"pause {pause:.1f} ms  " if pause is not None else ""


def _print_table(results: list[ScenarioResult], elapsed: float, store: RunStore) -> None:
    width = max([len(r.cell_id) for r in results] + [4])
    _say("")
    _say(f"{'cell':<{width}}  {'verdict':<11}  {'pause ms':>9}  {'time s':>7}  first failed check / reason")
    for r in results:
        pause = r.timings.get("pause_ms")
        failed = next((c for c in r.checks if c.verdict == "fail"), None)
        why = (
            f"{failed.name}: {failed.observed}" if failed else (r.reason.splitlines()[0] if r.reason else "")
        )
        _say(
            f"{r.cell_id:<{width}}  {r.verdict:<11}  {'' if pause is None else f'{pause:.1f}':>9}  "
            f"{r.timings.get('total_s', 0):>7.1f}  {why[:90]}"
        )
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ("pass", "fail", "unsupported", "error")}
    _say(
        f"scenarios: {counts['pass']} passed, {counts['fail']} failed, {counts['unsupported']} unsupported, "
        f"{counts['error']} error in {elapsed:.0f}s  (results: {_rel(store.root)})"
    )


def _render(run_dir: Path, expected: list[str] | None = None, baseline: Path | None = None) -> bool:
    summary = render_run(run_dir, baseline=baseline, expected_cells=expected or [])
    _say(summary.console)
    return summary.ok


def report(args: argparse.Namespace) -> int:
    """Render from stored results only: no Docker, no QEMU."""
    if args.merge:
        dest = args.reports / new_run_id()
        merged = merge_runs(list(args.merge), dest)
        for note in merged.notes:
            _say(note)
        update_latest(args.reports, dest.name)
        run_dir = dest
    else:
        run_dir = args.reports / args.run
        if not run_dir.is_dir():
            raise ConfigError(
                f"no run folder {run_dir}", hint="run `nox -s build test` first, or pass --run NAME"
            )
        run_dir = run_dir.resolve()
    return 0 if _render(run_dir, baseline=args.baseline) else 1


COMMANDS = {"list": list_cells, "matrix": matrix, "build": build, "test": test, "report": report}
