"""``test --bisect auto`` (and ``build --bisect auto``): the night's regressions, bisected.

A regression (a cell that passed in the baseline run and fails now, :mod:`harness.report.history`) is
bisected when the tree it depends on holds commits and both runs' build records say which commit they
built (``source.commit`` of a ``git`` tree, ``source.git.head`` of a clean ``local`` checkout): good is the
baseline's commit, bad this run's. An upgrade cell bisects its target tree. All bisections of one run
share one step budget (``--bisect-steps``); what it does not cover is said, not silently dropped.

Each bisection goes into the night's own run folder (``bisect/<cell folder>/``), so the dashboard shows
its answer beside the regression.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from harness.bisect.session import check_range, prepare, remove_build_dirs, run_one
from harness.bisect.target import find_target, repository
from harness.build.builder import Builder
from harness.config.schema import Matrix
from harness.errors import ConfigError
from harness.live.vocab import CellId
from harness.report.history import History
from harness.report.render import RenderSummary, render_run
from harness.store.bisect_record import BisectRecord
from harness.store.build_record import BuildRecord
from harness.store.runs import RESULTS_JSON, RunStore

Say = Callable[[str], None]


def build_records(run_dir: Path) -> dict[str, BuildRecord]:
    """The build records of a run folder (its ``results.json`` when rendered, else ``builds/``)."""
    try:
        data = json.loads((run_dir / RESULTS_JSON).read_text(encoding="utf-8"))
        return {str(k): BuildRecord.from_json(v) for k, v in data["builds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return RunStore(run_dir).load_builds()


def built_commit(record: BuildRecord | None) -> str:
    """The commit a build record says it built ("" when it built no commit, or a dirty checkout)."""
    if record is None:
        return ""
    source = record.source or {}
    if isinstance(source.get("commit"), str):
        return str(source["commit"])
    local = source.get("git")
    if isinstance(local, dict) and local.get("head") and not local.get("dirty"):
        return str(local["head"])
    return ""


def bisect_regressions(
    run_dir: Path,
    history: History,
    matrix: Matrix,
    builder: Builder,
    cache: Path,
    budget: int,
    runs: int,
    say: Say,
) -> list[BisectRecord]:
    """Bisect the regressions of ``history`` (this run ``run_dir`` against its baseline) within ``budget``
    steps in all; returns the records of the bisections that ran."""
    now, before = build_records(run_dir), build_records(history.baseline_dir)
    done: list[BisectRecord] = []
    for change in history.regressions:
        note = f"bisect auto: {change.kind} {change.cell_id}"
        if budget <= 0:
            say(f"{note}: not bisected, the step budget (--bisect-steps) is used up")
            continue
        try:
            target = find_target(matrix, change.cell_id)
        except ConfigError as exc:
            say(f"{note}: not bisected: {exc.message}")
            continue
        build_id = target.build.id
        good, bad = built_commit(before.get(build_id)), built_commit(now.get(build_id))
        if not good or not bad:
            say(f"{note}: not bisected: the build records of {build_id} name no commit in both runs")
            continue
        if good == bad:
            say(f"{note}: not bisected: both runs built {bad[:12]}; the tree did not change")
            continue
        try:
            repo, _ = repository(target, cache, [], say)
            check_range(repo, good, bad, good, bad)
        except ConfigError as exc:
            say(f"{note}: not bisected: {exc.message}")
            continue
        folder = run_dir / "bisect" / CellId(change.cell_id).folder()
        origin = f"auto: regression since run {history.baseline}"
        command = f"python -m harness bisect --cell {change.cell_id} --good {good} --bad {bad}"
        bisection = prepare(target, repo, good, bad, good, bad, builder, matrix, folder, runs, budget,
                            command, say, origin=origin)  # fmt: skip
        try:
            run_one(bisection, say)
        except ConfigError as exc:  # the input did not hold (e.g. it passes at bad: a flaky night)
            say(f"{note}: {exc.message}")
        finally:
            remove_build_dirs(bisection.record, cache, say)
        budget -= len(bisection.record.steps)
        done.append(bisection.record)
    return done


def after_run(
    run_dir: Path,
    summary: RenderSummary,
    matrix: Matrix,
    builder: Builder,
    steps: int,
    runs: int,
    expected: list[str],
    window: int,
    say: Say,
) -> RenderSummary:
    """After a ``build`` or ``test`` run with ``--bisect auto``: bisect its regressions, render it again
    (quietly: the run's summary was printed already)."""
    if summary.history is None or not summary.history.regressions:
        return summary
    try:
        bisect_regressions(run_dir, summary.history, matrix, builder, builder.cache, steps, runs, say)
    finally:
        summary = render_run(run_dir, expected_cells=expected, window=window)
    return summary
