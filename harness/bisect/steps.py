"""One bisection step: build the tree at one commit, run the cell on it N times, decide what git is told.

The build is a normal build (:meth:`harness.build.builder.Builder.build`): its own key, cache folder and
record, a cache hit when that commit was built before. It may start from the build directory of the
step nearest in history (:class:`~harness.build.incremental.Seed`), which ninja then updates. A build
that fails is triaged like any other (:func:`harness.build.triage.annotate`) and, for a scenario cell,
the commit is skipped: a commit that does not build says nothing about the cell.

The cell runs ``runs`` times in one container (the runner's ``repeat``: a fresh pair of QEMUs each
time). The step's outcome (see :mod:`harness.store.bisect_record`) is ``good`` when every run passed,
``bad`` when every run failed, ``flaky`` when they disagree (skipped, never blamed), ``unjudged`` when no
run could judge QEMU (``error``, ``unsupported``). An error of the infrastructure (engine, disk) is
not an outcome: it stops the bisection (:class:`~harness.errors.InfraError`).

Everything a step writes goes to its folder ``steps/<nn>-<commit12>/``, laid out like a run folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bisect import gitrepo
from harness.bisect.target import Target
from harness.build.batch import build_one
from harness.build.builder import Artifact, Builder, BuildOutcome
from harness.build.incremental import Seed
from harness.config.schema import Settings
from harness.engine.containers import Engine
from harness.errors import InfraError
from harness.live.result import ScenarioResult
from harness.live.vocab import Verdict
from harness.run.runner import CellPlan, run_cell
from harness.store.bisect_record import BisectStep, Commit
from harness.store.runs import RunStore

Say = Callable[[str], None]


@dataclass
class StepContext:
    """What every step of one bisection shares."""

    target: Target
    repo: Path  # a git repository holding the commits (for distances between them)
    builder: Builder
    engine: Engine
    settings: Settings
    runs: int
    folder: Path  # the bisection's folder
    reproduce: str
    say: Say
    fixed: Artifact | None = None  # an upgrade's source QEMU
    seeds: dict[str, Seed] = field(default_factory=dict)  # commit -> a passed build of this bisection


def classify(result: ScenarioResult, runs: int) -> tuple[str, list[str], str, str]:
    """``(outcome, verdict of each run, first failed check, reason)`` of a cell run ``runs`` times.

    A run that did not pass shows the verdict of the first run that did not (the runner keeps that one
    run's result in full and a pass/fail mark for every other)."""
    verdict = result.verdict
    if result.samples:
        verdicts = [str(Verdict.PASS) if s.get("passed") else str(verdict) for s in result.samples]
    else:
        verdicts = [str(verdict)]
    check = result.first_failed_check()
    what = f"{check.name}: {check.observed}" if check else ""
    reason = " ".join(result.reason.split())[:300]
    passed = verdicts.count("pass")
    if passed == len(verdicts):
        return "good", verdicts, "", f"{len(verdicts)} of {len(verdicts)} runs passed"
    if passed:
        return "flaky", verdicts, what, f"{passed} of {len(verdicts)} runs passed: {reason}"
    if verdict is Verdict.FAIL:
        return "bad", verdicts, what, reason
    return "unjudged", verdicts, what, f"{verdict}: {reason}"


def build_summary(outcome: BuildOutcome) -> dict[str, Any]:
    """What a step's page shows of its build (the whole record is in the step's folder)."""
    r = outcome.record
    out: dict[str, Any] = {
        "verdict": str(r.verdict),
        "stage": None if r.stage is None else str(r.stage),
        "cache_hit": r.cache_hit,
        "seconds": r.durations.get("total_s", 0.0),
        "key": (r.key or "")[:16],
        "qemu_version": r.qemu_version or "",
    }
    for name in ("configure_s", "build_s", "seed_copy_s"):
        if name in r.durations:
            out[name] = r.durations[name]
    if r.incremental:
        out["incremental"] = dict(r.incremental)
    if r.ccache:
        out["ccache_hit_pct"] = r.ccache.get("hit_rate_pct")
    if not r.ok:
        out["why"] = r.why()
    if r.triage is not None:
        out["triage"] = {"cause": r.triage.cause, "rule": r.triage.rule, "evidence": r.triage.evidence}
    return out


def _nearest_seed(ctx: StepContext, commit: str) -> Seed | None:
    """The passed build of this bisection nearest to ``commit`` in history whose directory still exists."""
    usable = [(c, s) for c, s in ctx.seeds.items() if c != commit and (s.obj / "build.ninja").is_file()]
    if not usable:
        return None
    return min(usable, key=lambda cs: gitrepo.distance(ctx.repo, cs[0], commit))[1]


def _build(ctx: StepContext, store: RunStore, commit: Commit) -> BuildOutcome:
    """The step's build (a normal build: stored, a failure triaged), offered as a seed when it passed."""
    cell = ctx.target.build_at(commit.commit)
    outcome = build_one(ctx.builder, store, cell, ctx.say, _nearest_seed(ctx, commit.commit))
    if outcome.ok:
        seed = Seed.of(outcome.record, ctx.target.domain, label=commit.short)
        if seed is not None:
            ctx.seeds[commit.commit] = seed
    return outcome


def test_commit(ctx: StepContext, number: int, commit: Commit, role: str) -> BisectStep:
    """Build and judge ``commit``; the step's record. InfraError when the machinery failed."""
    started = time.monotonic()
    folder = f"steps/{number:02d}-{commit.short}"
    store = RunStore(ctx.folder / folder)
    step = BisectStep(number, commit, role, folder=folder)
    ctx.say(f"[step {number}] {commit.short} {commit.subject[:70]}")
    outcome = _build(ctx, store, commit)
    step.build = build_summary(outcome)
    record = outcome.record
    if record.infra:
        raise InfraError(f"building {commit.short}: {record.why()}", hint=record.hint)
    if ctx.target.kind == "build":
        step.outcome = "good" if outcome.ok else "bad"
        step.runs = [str(record.verdict)]
        step.reason = "it builds" if outcome.ok else record.why()
        step.check = "" if outcome.ok else f"build: {record.why()}"
    elif not outcome.ok or outcome.artifact is None:
        cause = record.triage.cause if record.triage else ""
        step.outcome = "broken"
        step.reason = f"does not build: {record.why()}"
        if cause and cause not in step.reason:
            step.reason += f" ({cause})"
    else:
        scenario = ctx.target.scenario_at(commit.commit)
        assert scenario is not None
        upgrade = ctx.target.kind == "upgrade"
        source, target = (ctx.fixed, outcome.artifact) if upgrade else (outcome.artifact, None)
        assert source is not None
        plan = CellPlan(scenario, source, target, ctx.reproduce)
        result = run_cell(ctx.engine, plan, store, ctx.settings, repeat=ctx.runs)
        if result.infra:
            raise InfraError(f"running {scenario.id} on {commit.short}: {result.reason}")
        step.outcome, step.runs, step.check, step.reason = classify(result, ctx.runs)
    step.seconds = round(time.monotonic() - started, 2)
    ctx.say(f"[step {number}] {commit.short}: {step.outcome} ({step.reason[:120]}) in {step.seconds:.0f} s")
    return step
