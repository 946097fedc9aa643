"""Run folders: where one run's records live, and how they are named.

A run folder ``reports/<run-id>/`` holds::

    plan.json                               the cells the run set out to do (written before any work)
    results/<cell folder>/result.json       one ScenarioResult per scenario cell (+ its logs beside it)
    builds/<cell folder>/build.json         one BuildRecord per build cell
    summary.json                            {scenario cell id: verdict}

``<cell folder>`` is :meth:`CellId.folder`. Every file is written atomically; a file that is
nevertheless missing or corrupt (a run killed mid-way, a disk full) loads as a record with verdict
``error`` naming the file, so a report still renders; a planned cell with no record at all loads as
``not-run``, so what a run never did shows as such (also when the report is rendered again later, or
merged). Run ids are UTC timestamps and sort in time order; ``reports/latest`` is a relative symlink to
the newest run.

A run id given again (``--run-id``, ``CPR_RUN_ID``) continues that folder only when the earlier command
planned nothing the new one does not redo (``build`` then ``test`` of one ``nox -s build test``); any
other earlier run is kept apart: the new run gets ``<run-id>-2`` (:meth:`RunStore.open`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.live.files import write_json_atomic
from harness.live.result import ScenarioResult
from harness.live.vocab import CellId, Verdict
from harness.store.build_record import BuildRecord

RESULT_FILE = "result.json"
BUILD_FILE = "build.json"
SUMMARY_FILE = "summary.json"
PLAN_FILE = "plan.json"
RESULTS_JSON = "results.json"
LATEST_LINK = "latest"
NOT_RUN_REASON = "expected in this run but never started (the run stopped early or was interrupted)"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable UTC timestamp, e.g. ``20261126T130501Z``."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def update_latest(reports_dir: Path, run_id: str) -> Path:
    """Point ``reports_dir/latest`` at ``run_id`` (a relative symlink), replacing it atomically."""
    reports_dir = Path(reports_dir)
    link = reports_dir / LATEST_LINK
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; remove it to let the harness manage it")
    tmp = reports_dir / f".{LATEST_LINK}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(run_id, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return link


@dataclass
class Plan:
    """The cells a run set out to do (``plan.json``), written before the first build starts."""

    builds: list[str] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # "build", "test", "merge" (in order)
    matrix: str = ""
    started_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "commands": list(self.commands),
            "matrix": self.matrix,
            "started_at": self.started_at,
            "builds": list(self.builds),
            "scenarios": list(self.scenarios),
        }

    @classmethod
    def from_json(cls, d: Any) -> Plan:
        """Read a ``plan.json`` object; ValueError when it is not one (a cell id that is not one, too)."""
        if not isinstance(d, dict):
            raise ValueError("a plan must be a JSON object")

        def cells(key: str) -> list[str]:
            value = d.get(key) or []
            if not isinstance(value, list):
                raise ValueError(f"plan: {key} must be a list")
            return [str(CellId(str(c))) for c in value]

        commands = d.get("commands") or []
        return cls(
            builds=cells("builds"),
            scenarios=cells("scenarios"),
            commands=[str(c) for c in commands] if isinstance(commands, list) else [],
            matrix=str(d.get("matrix") or ""),
            started_at=str(d.get("started_at") or ""),
        )

    def covers(self, earlier: Plan) -> bool:
        """Whether this plan redoes everything ``earlier`` planned (so it may continue its folder)."""
        return not earlier.scenarios and set(earlier.builds) <= set(self.builds)

    def union(self, other: Plan) -> Plan:
        return Plan(
            builds=_ordered_union(self.builds, other.builds),
            scenarios=_ordered_union(self.scenarios, other.scenarios),
            commands=[*self.commands, *other.commands],
            matrix=self.matrix or other.matrix,
            started_at=self.started_at or other.started_at,
        )


def _ordered_union(first: list[str], second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in (RESULTS_JSON, SUMMARY_FILE, PLAN_FILE, "results", "builds")
    )


class RunStore:
    """The folder of one run: ``reports/<run-id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.results_dir = self.root / "results"
        self.builds_dir = self.root / "builds"

    @classmethod
    def create(cls, reports_dir: Path, run_id: str | None = None) -> RunStore:
        """Make a new run folder under ``reports_dir`` (``<run-id>``, ``<run-id>-2``, ... if taken)."""
        reports_dir = Path(reports_dir)
        reports_dir.mkdir(parents=True, exist_ok=True)
        base = run_id or new_run_id()
        for n in range(1, 1000):
            root = reports_dir / (base if n == 1 else f"{base}-{n}")
            try:
                root.mkdir()
            except FileExistsError:
                continue
            return cls(root)
        raise FileExistsError(f"{reports_dir}: too many runs named {base}")

    @classmethod
    def open(cls, reports_dir: Path, run_id: str | None, plan: Plan) -> tuple[RunStore, str]:
        """The run folder for a command that plans ``plan``, with the plan written into it first.

        No ``run_id``: a new folder. A ``run_id`` whose folder is new or empty: that folder. One whose
        folder holds an earlier run: continued when ``plan`` redoes all it planned (``build`` then
        ``test``), else the earlier run is kept apart and this one goes to ``<run-id>-2`` (or ``-3``...).
        Returns the store and a note for the user ("" when nothing needs saying)."""
        note = ""
        if run_id is None:
            store = cls.create(reports_dir)
        else:
            existing = cls(Path(reports_dir) / run_id)
            earlier = existing.read_plan()
            if not is_run_dir(existing.root):
                existing.root.mkdir(parents=True, exist_ok=True)
                store = existing
            elif earlier is not None and plan.covers(earlier):
                store, plan = existing, earlier.union(plan)
            else:
                store = cls.create(reports_dir, run_id)
                note = (
                    f"run folder {existing.root} already holds an earlier run; it is kept as it is, "
                    f"and this run is {store.run_id}"
                )
        store.write_plan(plan)
        return store, note

    @property
    def run_id(self) -> str:
        return self.root.name

    # -- where --------------------------------------------------------------------------------------

    def cell_path(self, cell_id: str) -> Path:
        """``results/<cell folder>/``, not created: it appears only with the cell's first output, so a
        cell abandoned before that still reads as ``not run``."""
        return self.results_dir / CellId(cell_id).folder()

    def cell_dir(self, cell_id: str) -> Path:
        """``results/<cell folder>/``: where the result and the cell's logs live (created)."""
        d = self.cell_path(cell_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def build_dir(self, cell_id: str) -> Path:
        d = self.builds_dir / CellId(cell_id).folder()
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- write --------------------------------------------------------------------------------------

    def save_scenario(self, r: ScenarioResult) -> Path:
        path = self.cell_dir(r.cell_id) / RESULT_FILE
        write_json_atomic(path, r.to_json())
        return path

    def save_build(self, record: BuildRecord, cell_id: str | None = None) -> Path:
        path = self.build_dir(cell_id or record.cell) / BUILD_FILE
        write_json_atomic(path, record.to_json())
        return path

    def write_plan(self, plan: Plan) -> Path:
        path = self.root / PLAN_FILE
        write_json_atomic(path, plan.to_json())
        return path

    def read_plan(self) -> Plan | None:
        """The run's plan; None when it has none (older runs) or it is unreadable."""
        try:
            return Plan.from_json(self.read_json(PLAN_FILE))
        except ValueError:
            return None

    def write_summary(self, expected_cells: Iterable[str] = ()) -> Path:
        """``summary.json``: ``{scenario cell id: verdict}`` for the scenarios of this run."""
        summary = {r.cell_id: str(r.verdict) for r in self.load_scenarios(expected_cells)}
        path = self.root / SUMMARY_FILE
        write_json_atomic(path, summary)
        return path

    # -- read ---------------------------------------------------------------------------------------

    def _cells(self, folder: Path) -> list[tuple[CellId, Path]]:
        found = []
        if folder.is_dir():
            for d in sorted(folder.iterdir()):
                if d.is_dir() and not d.is_symlink():
                    with contextlib.suppress(ValueError):  # not a cell folder: not ours
                        found.append((CellId.from_folder(d.name), d))
        return found

    def load_builds(self, expected_cells: Iterable[str] = ()) -> dict[str, BuildRecord]:
        """``{build cell id: record}``; an unreadable record becomes an ``error`` record naming the file,
        an expected cell without a folder a ``not-run`` record."""
        out: dict[str, BuildRecord] = {}
        for cell_id, d in self._cells(self.builds_dir):
            rel = d.relative_to(self.root) / BUILD_FILE
            try:
                record = BuildRecord.from_json(json.loads((d / BUILD_FILE).read_text(encoding="utf-8")))
            except FileNotFoundError:
                record = BuildRecord.unreadable(cell_id, f"{rel} is missing")
            except (OSError, ValueError, TypeError) as e:
                record = BuildRecord.unreadable(cell_id, f"{rel} is truncated or corrupt: {e}")
            out[str(cell_id)] = record
        for cell in expected_cells:
            if cell not in out:
                out[cell] = BuildRecord.not_run(cell, NOT_RUN_REASON)
        return dict(sorted(out.items()))

    def load_scenario(self, cell_id: str) -> ScenarioResult:
        """The stored result of one cell; missing or corrupt -> a verdict ``error`` result naming the file."""
        path = self.results_dir / CellId(cell_id).folder() / RESULT_FILE
        rel = path.relative_to(self.root)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ScenarioResult.error(cell_id, f"no result: {rel} is missing (the run stopped early?)")
        except OSError as e:
            return ScenarioResult.error(cell_id, f"{rel} cannot be read: {e}")
        try:
            return ScenarioResult.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as e:
            return ScenarioResult.error(cell_id, f"{rel} is truncated or corrupt: {type(e).__name__}: {e}")

    def load_scenarios(self, expected_cells: Iterable[str] = ()) -> list[ScenarioResult]:
        """Every result under ``results/`` plus every ``expected_cells`` id, sorted by cell id.

        Never raises for a bad file: a corrupt result becomes an ``error`` result naming the file; an
        expected cell with no folder at all becomes ``not-run``.
        """
        stored = {str(cell_id) for cell_id, _ in self._cells(self.results_dir)}
        out = [self.load_scenario(c) for c in sorted(stored)]
        out += [ScenarioResult.not_run(c, NOT_RUN_REASON) for c in sorted(set(expected_cells) - stored)]
        return sorted(out, key=lambda r: r.cell_id)

    def verdicts(self) -> dict[str, Verdict]:
        return {r.cell_id: r.verdict for r in self.load_scenarios()}

    def read_json(self, name: str) -> Any:
        """A JSON file of the run folder (``None`` when missing or unreadable)."""
        try:
            return json.loads((self.root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
