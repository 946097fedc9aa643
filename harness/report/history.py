"""Compare one run with an earlier one: regressions, fixes, new and removed cells, unchanged.

The baseline is ``--baseline DIR`` when given, else the previous run in the same reports folder (the
sibling run folder whose name sorts just before this one: run ids are UTC timestamps); a run with
scenario cells skips earlier runs that have none (a ``build`` run in between). Only the kinds of cell
the run holds are compared: a ``build`` run compares its build cells and never lists the scenario cells
of a ``test`` run as removed. Verdicts (and pause times) of a run come from its ``results.json`` when
present (scenarios and builds), else from its ``results/`` folder (``summary.json`` naming the cells that
never ran) and ``builds/*/build.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.live.result import ScenarioResult
from harness.live.vocab import Verdict
from harness.report.stats import Shift, pause_shift
from harness.store.build_record import BuildRecord
from harness.store.runs import LATEST_LINK, RESULTS_JSON, SUMMARY_FILE, RunStore, is_run_dir

GOOD = frozenset({"pass"})
BAD = frozenset({"fail", "error"})
INFRA = "infra"  # an error of the machinery (engine, disk), not of the tree: never a regression


def compared(verdict: str, infra: bool) -> str:
    """The verdict history compares: an ``error`` of the infrastructure becomes ``infra``."""
    return INFRA if verdict == Verdict.ERROR and infra else str(verdict)


@dataclass(frozen=True)
class Change:
    """One cell whose verdict differs from the baseline (``None``: absent on that side)."""

    cell_id: str
    kind: str  # "scenario" | "build"
    before: str | None
    after: str | None

    def to_json(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass
class History:
    baseline: str  # the baseline run's id (folder name)
    baseline_dir: Path
    regressions: list[Change] = field(default_factory=list)  # pass -> fail/error
    fixes: list[Change] = field(default_factory=list)  # fail/error -> pass
    changed: list[Change] = field(default_factory=list)  # any other verdict change
    new: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pause_regressions: list[PauseRegression] = field(default_factory=list)  # see harness.report.stats

    def status(self, cell_id: str, kind: str = "scenario") -> tuple[str, Change] | None:
        """``("regression" | "fix" | "changed" | "new", change)`` for a cell of this run, else None."""
        for label, changes in (
            ("regression", self.regressions),
            ("fix", self.fixes),
            ("changed", self.changed),
            ("new", self.new),
        ):
            for c in changes:
                if c.cell_id == cell_id and c.kind == kind:
                    return label, c
        return None

    def to_json(self) -> dict[str, Any]:
        def dump(changes: list[Change]) -> list[dict[str, Any]]:
            return [c.to_json() for c in changes]

        return {
            "baseline": self.baseline,
            "regressions": dump(self.regressions),
            "fixes": dump(self.fixes),
            "changed": dump(self.changed),
            "new": dump(self.new),
            "removed": dump(self.removed),
            "unchanged": len(self.unchanged),
            "pause_regressions": [p.to_json() for p in self.pause_regressions],
        }


@dataclass(frozen=True)
class PauseRegression:
    """A cell whose pause grew significantly and by more than the stated effect (both runs passed)."""

    cell_id: str
    shift: Shift

    def to_json(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, **asdict(self.shift)}


@dataclass
class Verdicts:
    """The verdicts of one run as history compares them (``infra`` for infrastructure errors), and the
    pause samples of the cells that passed."""

    scenarios: dict[str, str] = field(default_factory=dict)
    builds: dict[str, str] = field(default_factory=dict)
    pauses: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Iterable[ScenarioResult], builds: dict[str, BuildRecord]) -> Verdicts:
        results = list(results)
        return cls(
            {r.cell_id: compared(r.verdict, r.infra) for r in results},
            {k: compared(b.verdict, b.infra) for k, b in builds.items()},
            {
                r.cell_id: r.pause_samples()
                for r in results
                if r.verdict is Verdict.PASS and r.pause_samples()
            },
        )


def earlier_runs(run_dir: Path) -> list[Path]:
    """The run folders beside ``run_dir`` whose names sort before it, oldest first."""
    run_dir = Path(run_dir).resolve()
    parent = run_dir.parent
    if not parent.is_dir():
        return []
    earlier = [
        p
        for p in parent.iterdir()
        if p.name < run_dir.name
        and p.name != LATEST_LINK
        and not p.name.startswith(".")
        and not p.is_symlink()
        and is_run_dir(p)
    ]
    return sorted(earlier, key=lambda p: p.name)


def has_scenarios(run_dir: Path) -> bool:
    """Whether a run folder holds scenario cells (a ``build`` run holds none)."""
    results = Path(run_dir) / "results"
    if results.is_dir() and any(p.is_dir() for p in results.iterdir()):
        return True
    summary = RunStore(Path(run_dir)).read_json(SUMMARY_FILE)
    return isinstance(summary, dict) and bool(summary)


def find_previous_run(run_dir: Path, *, with_scenarios: bool = False) -> Path | None:
    """The run folder beside ``run_dir`` whose name sorts just before it (None when there is none).

    ``with_scenarios``: the nearest earlier run that holds scenario cells, if there is one."""
    earlier = earlier_runs(run_dir)
    if with_scenarios:
        found = next((p for p in reversed(earlier) if has_scenarios(p)), None)
        if found is not None:
            return found
    return earlier[-1] if earlier else None


def load_verdicts(run_dir: Path) -> Verdicts:
    """Scenario and build verdicts (and pause samples) of a run folder; never raises for a damaged one."""
    run_dir = Path(run_dir)
    try:
        data = json.loads((run_dir / RESULTS_JSON).read_text(encoding="utf-8"))
        results = [ScenarioResult.from_json(s) for s in data["scenarios"]]
        builds = {str(k): BuildRecord.from_json(v) for k, v in data["builds"].items()}
        return Verdicts.of(results, builds)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    store = RunStore(run_dir)
    summary = store.read_json(SUMMARY_FILE)
    expected = [str(k) for k in summary] if isinstance(summary, dict) else []
    return Verdicts.of(store.load_scenarios(expected), store.load_builds())


def _compare_kind(history: History, kind: str, now: dict[str, str], before: dict[str, str]) -> None:
    for cell_id in sorted(set(now) | set(before)):
        old, new = before.get(cell_id), now.get(cell_id)
        change = Change(cell_id, kind, old, new)
        if old is None:
            history.new.append(change)
        elif new is None:
            history.removed.append(change)
        elif old == new:
            history.unchanged.append(cell_id)
        elif old in GOOD and new in BAD:
            history.regressions.append(change)
        elif old in BAD and new in GOOD:
            history.fixes.append(change)
        else:
            history.changed.append(change)


def compare(now: Verdicts, before: Verdicts, baseline_dir: Path) -> History:
    """Classify every cell of either run; builds are listed after scenarios in each category.

    A run without scenario cells (``build``) compares its builds only: the baseline's scenario cells are
    not "removed" by a run that never set out to run them."""
    history = History(baseline=Path(baseline_dir).resolve().name, baseline_dir=Path(baseline_dir))
    if now.scenarios:
        _compare_kind(history, "scenario", now.scenarios, before.scenarios)
    _compare_kind(history, "build", now.builds, before.builds)
    for cell_id in sorted(now.pauses.keys() & before.pauses.keys()):
        shift = pause_shift(now.pauses[cell_id], before.pauses[cell_id])
        if shift.regression:
            history.pause_regressions.append(PauseRegression(cell_id, shift))
    return history


def history_for(run_dir: Path, now: Verdicts, baseline: Path | None = None) -> History | None:
    """Compare ``now`` (the verdicts of ``run_dir``) with ``baseline`` or the previous run; None if none.

    Raises ``ConfigError`` when an explicit ``baseline`` is not a run folder.
    """
    if baseline is not None:
        if not is_run_dir(Path(baseline)):
            raise ConfigError(
                f"--baseline {baseline}: not a run folder (no results.json, summary.json, results/, builds/)",
                hint="pass a folder under reports/, e.g. reports/<run-id>",
            )
        base = Path(baseline)
    else:
        found = find_previous_run(run_dir, with_scenarios=bool(now.scenarios))
        if found is None:
            return None
        base = found
    return compare(now, load_verdicts(base), base)
