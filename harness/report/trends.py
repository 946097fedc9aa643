"""Trends across nights: each cell's verdicts and pause times over the last N runs, and when it went red.

The window is the run being rendered plus the ``N - 1`` run folders beside it whose names sort just before
it (run ids are UTC timestamps, so a folder name is a night), each read as a baseline is read
(:func:`harness.report.history.load_verdicts`: ``results.json``, else the stored records). N is
``--history`` (default :data:`DEFAULT_WINDOW`), which bounds the work of a render.

A cell's *strip* has one mark per run of the window, aligned across cells (``None`` where the cell was
not in that run). A cell is *red* when its verdict is ``fail`` or ``error``; an error of the
infrastructure (``infra``), ``not-run`` and absence say nothing about the tree: they neither start nor
end a red streak. A cell red now has a *red since* mark (the first run of its current red streak); it is
an *open regression* when the verdict before that streak was ``pass``.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.live.vocab import CellId
from harness.report.history import BAD, GOOD, INFRA, Verdicts, earlier_runs, load_verdicts

DEFAULT_WINDOW = 14
NEUTRAL = frozenset({None, INFRA, "not-run"})
_RUN_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})T\d{6}Z")


def run_date(run_id: str) -> str:
    """``20261126T020000Z`` -> ``2026-11-26``; a run id that is not a timestamp is its own date."""
    m = _RUN_DATE.match(run_id)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else run_id


@dataclass(frozen=True)
class Night:
    """One run of the window."""

    run_id: str
    path: Path
    verdicts: Verdicts

    @property
    def date(self) -> str:
        return run_date(self.run_id)


@dataclass(frozen=True)
class Mark:
    """One cell in one run of the window."""

    run_id: str
    date: str
    verdict: str | None  # as history compares it (``infra`` for infrastructure errors); None: absent
    pause: float | None  # ms
    href: str  # that run's page of the cell, relative to the rendered run folder ("" when there is none)

    @property
    def red(self) -> bool:
        return self.verdict in BAD

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "verdict": self.verdict, "pause_ms": self.pause}


@dataclass
class CellTrend:
    """One cell of the rendered run across the window (oldest mark first, the rendered run last)."""

    cell_id: str
    kind: str  # "scenario" | "build"
    marks: list[Mark]
    red_since: Mark | None = field(init=False, default=None)  # first run of the current red streak
    before_red: Mark | None = field(init=False, default=None)  # the last verdict before that streak

    def __post_init__(self) -> None:
        if not self.marks or not self.marks[-1].red:
            return
        for mark in reversed(self.marks):
            if mark.red:
                self.red_since = mark
            elif mark.verdict not in NEUTRAL:
                self.before_red = mark
                break

    @property
    def regression(self) -> bool:
        """Red now, and it passed before its red streak began (within the window)."""
        return self.before_red is not None and self.before_red.verdict in GOOD

    @property
    def red_before_window(self) -> bool:
        """In the window's first run already, and red in every run since that says anything about it."""
        return self.red_since is not None and self.before_red is None and self.marks[0].verdict is not None

    @property
    def pauses(self) -> list[float]:
        return [m.pause for m in self.marks if m.pause is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "kind": self.kind,
            "marks": [m.to_json() for m in self.marks],
            "red_since": self.red_since.run_id if self.red_since else None,
            "before_red": self.before_red.to_json() if self.before_red else None,
            "regression": self.regression,
        }


@dataclass
class Trends:
    nights: list[Night]
    cells: dict[tuple[str, str], CellTrend]  # (kind, cell id) -> trend, for the cells of the rendered run

    def of(self, cell_id: str, kind: str = "scenario") -> CellTrend | None:
        return self.cells.get((kind, cell_id))

    def open_regressions(self) -> list[CellTrend]:
        """Cells red now that passed before their red streak began, scenarios first, then builds."""
        found = [t for t in self.cells.values() if t.regression]
        return sorted(found, key=lambda t: (t.kind != "scenario", t.cell_id))

    def to_json(self) -> dict[str, Any]:
        return {
            "window": [n.run_id for n in self.nights],
            "cells": [t.to_json() for t in self.cells.values()],
        }


def _href(night: Night, current: Path, cell_id: str, kind: str) -> str:
    folder = CellId(cell_id).folder()
    prefix = "" if night.path == current else f"../{night.run_id}/"
    if kind == "build":
        page, anchor = night.path / "index.html", f"#build-{folder}"
    else:
        page, anchor = night.path / "cells" / f"{folder}.html", ""
    if night.path != current and not page.is_file():
        return ""
    return prefix + page.relative_to(night.path).as_posix() + anchor


def trends_for(run_dir: Path, now: Verdicts, window: int = DEFAULT_WINDOW) -> Trends:
    """The trends of every cell of ``run_dir`` (whose verdicts are ``now``) over ``window`` runs."""
    run_dir = Path(run_dir).resolve()
    earlier = earlier_runs(run_dir)[-(window - 1) :] if window > 1 else []
    nights = [Night(p.name, p, load_verdicts(p)) for p in earlier] + [Night(run_dir.name, run_dir, now)]
    cells: dict[tuple[str, str], CellTrend] = {}
    for kind, ids in (("scenario", now.scenarios), ("build", now.builds)):
        for cell_id in ids:
            marks = []
            for night in nights:
                verdicts = night.verdicts.scenarios if kind == "scenario" else night.verdicts.builds
                verdict = verdicts.get(cell_id)
                samples = night.verdicts.pauses.get(cell_id, []) if kind == "scenario" else []
                pause = statistics.median(samples) if samples else None
                href = _href(night, run_dir, cell_id, kind) if verdict is not None else ""
                marks.append(Mark(night.run_id, night.date, verdict, pause, href))
            cells[(kind, cell_id)] = CellTrend(cell_id, kind, marks)
    return Trends(nights, cells)
