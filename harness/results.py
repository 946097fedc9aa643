"""Result records of a run and their on-disk layout (standard library only: also runs in containers).

A run folder ``reports/<run-id>/`` holds::

    results/<cell_dir_name>/result.json   one ScenarioResult per scenario cell (+ its logs beside it)
    builds/<cell_dir_name>/build.json     one record per build cell (written by the build module)
    summary.json                          {scenario cell id: verdict}

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``) so a reader
never sees half a file; a file that is nevertheless missing or corrupt (a run killed mid-way, a disk
full) loads as a result with verdict ``error`` naming the file, so a report still renders.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERDICTS = ("pass", "fail", "unsupported", "error", "not-run")
CHECK_VERDICTS = ("pass", "fail", "skip")
RESULT_FILE = "result.json"
BUILD_FILE = "build.json"
SUMMARY_FILE = "summary.json"
LATEST_LINK = "latest"


def _list(d: dict[str, Any], key: str) -> list[Any]:
    value = d.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list, not {type(value).__name__}")
    return value


def _dict(d: dict[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object, not {type(value).__name__}")
    return value


@dataclass
class Check:
    name: str
    verdict: str  # "pass" | "fail" | "skip"
    expected: str
    observed: str
    detail: str = ""  # e.g. a unified diff

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Check:
        return cls(
            name=str(d["name"]),
            verdict=str(d.get("verdict", "fail")),
            expected=str(d.get("expected", "")),
            observed=str(d.get("observed", "")),
            detail=str(d.get("detail", "")),
        )


@dataclass
class Step:
    name: str
    side: str
    started: float  # seconds since the scenario started
    duration: float
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        return cls(
            name=str(d["name"]),
            side=str(d.get("side", "")),
            started=float(d.get("started", 0.0)),
            duration=float(d.get("duration", 0.0)),
            ok=bool(d.get("ok", False)),
            detail=str(d.get("detail", "")),
        )


@dataclass
class QmpRecord:
    side: str
    t: float  # epoch seconds: QEMU's timestamp for events, the host clock for commands
    kind: str  # "command" | "reply" | "event" | "error"
    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "t": self.t, "kind": self.kind, "name": self.name, "data": self.data}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QmpRecord:
        return cls(
            side=str(d.get("side", "")),
            t=float(d.get("t", 0.0)),
            kind=str(d.get("kind", "")),
            name=str(d.get("name", "")),
            data=_dict(d, "data"),
        )


@dataclass
class ScenarioResult:
    cell_id: str
    scenario: str
    accel: str
    accel_used: str = ""
    verdict: str = "not-run"  # one of VERDICTS
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    qmp: list[QmpRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # total_s, pause_ms, downtime_ms, setup_s...
    qemu_version: dict[str, str] = field(default_factory=dict)  # {"source": ..., "destination": ...}
    logs: dict[str, str] = field(default_factory=dict)  # name -> path relative to the cell's result dir
    reproduce: str = ""
    started_at: str = ""  # ISO 8601
    finished_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "scenario": self.scenario,
            "accel": self.accel,
            "accel_used": self.accel_used,
            "verdict": self.verdict,
            "reason": self.reason,
            "checks": [c.to_json() for c in self.checks],
            "steps": [s.to_json() for s in self.steps],
            "qmp": [q.to_json() for q in self.qmp],
            "timings": dict(self.timings),
            "qemu_version": dict(self.qemu_version),
            "logs": dict(self.logs),
            "reproduce": self.reproduce,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScenarioResult:
        """Inverse of :meth:`to_json`; only ``cell_id`` is mandatory, unknown keys are ignored.

        Raises ``ValueError``/``KeyError``/``TypeError`` on a record that is not a scenario result.
        """
        if not isinstance(d, dict):
            raise ValueError(f"a scenario result must be a JSON object, not {type(d).__name__}")
        cell_id = str(d["cell_id"])
        scenario, accel = _scenario_accel(cell_id)
        return cls(
            cell_id=cell_id,
            scenario=str(d.get("scenario") or scenario),
            accel=str(d.get("accel") or accel),
            accel_used=str(d.get("accel_used", "")),
            verdict=str(d.get("verdict", "error")),
            reason=str(d.get("reason", "")),
            checks=[Check.from_json(c) for c in _list(d, "checks")],
            steps=[Step.from_json(s) for s in _list(d, "steps")],
            qmp=[QmpRecord.from_json(q) for q in _list(d, "qmp")],
            timings={str(k): float(v) for k, v in _dict(d, "timings").items() if v is not None},
            qemu_version={str(k): str(v) for k, v in _dict(d, "qemu_version").items()},
            logs={str(k): str(v) for k, v in _dict(d, "logs").items()},
            reproduce=str(d.get("reproduce", "")),
            started_at=str(d.get("started_at", "")),
            finished_at=str(d.get("finished_at", "")),
        )

    @classmethod
    def error(cls, cell_id: str, reason: str) -> ScenarioResult:
        """A result standing in for one that could not be produced or read."""
        scenario, accel = _scenario_accel(cell_id)
        return cls(cell_id=cell_id, scenario=scenario, accel=accel, verdict="error", reason=reason)


def _scenario_accel(cell_id: str) -> tuple[str, str]:
    """``tree/profile/scenario/accel`` (or ``upgrade/<name>/scenario/accel``) -> (scenario, accel)."""
    parts = cell_id.split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 4 else ("", "")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (a trailing newline) atomically; see :func:`write_text_atomic`."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (not every filesystem allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cell_dir_name(cell_id: str) -> str:
    """``"a/b/c/d"`` -> ``"a__b__c__d"``: a cell id as one safe folder name."""
    parts = cell_id.split("/")
    if not cell_id or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
        raise ValueError(f"cell id {cell_id!r} cannot be used as a folder name")
    return "__".join(parts)


def cell_id_from_dir(name: str) -> str:
    """Inverse of :func:`cell_dir_name`."""
    return name.replace("__", "/")


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

    @property
    def run_id(self) -> str:
        return self.root.name

    def cell_dir(self, cell_id: str) -> Path:
        """``results/<cell_dir_name>/``: where the result and the cell's logs live (created)."""
        d = self.results_dir / cell_dir_name(cell_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save_scenario(self, r: ScenarioResult) -> Path:
        path = self.cell_dir(r.cell_id) / RESULT_FILE
        write_json_atomic(path, r.to_json())
        return path

    def save_build(self, build_cell_id: str, record: dict[str, Any]) -> Path:
        path = self.builds_dir / cell_dir_name(build_cell_id) / BUILD_FILE
        write_json_atomic(path, record)
        return path

    def load_builds(self) -> dict[str, dict[str, Any]]:
        """``{build cell id: record}``; an unreadable record becomes ``{"error": "<why>"}``."""
        out: dict[str, dict[str, Any]] = {}
        if not self.builds_dir.is_dir():
            return out
        for d in sorted(p for p in self.builds_dir.iterdir() if p.is_dir()):
            rel = d.relative_to(self.root) / BUILD_FILE
            try:
                record = json.loads((d / BUILD_FILE).read_text(encoding="utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except FileNotFoundError:
                record = {"error": f"{rel} is missing"}
            except (OSError, ValueError) as e:
                record = {"error": f"{rel} is truncated or corrupt: {e}"}
            out[cell_id_from_dir(d.name)] = record
        return out

    def load_scenario(self, cell_id: str) -> ScenarioResult:
        """The stored result of one cell; missing or corrupt -> a verdict ``error`` result naming the file."""
        path = self.results_dir / cell_dir_name(cell_id) / RESULT_FILE
        rel = path.relative_to(self.root)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ScenarioResult.error(cell_id, f"no result: {rel} is missing (the run stopped early?)")
        except OSError as e:
            return ScenarioResult.error(cell_id, f"{rel} cannot be read: {e}")
        try:
            r = ScenarioResult.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as e:
            return ScenarioResult.error(cell_id, f"{rel} is truncated or corrupt: {type(e).__name__}: {e}")
        if r.verdict not in VERDICTS:
            r.reason = f"unknown verdict {r.verdict!r} in {rel}" + (f"; {r.reason}" if r.reason else "")
            r.verdict = "error"
        return r

    def load_scenarios(self, expected_cells: Iterable[str] = ()) -> list[ScenarioResult]:
        """Every result under ``results/`` plus every ``expected_cells`` id, sorted by cell id.

        Never raises for a bad file: a missing (expected but not written) or corrupt result becomes a
        result with verdict ``error`` whose reason names the file.
        """
        ids = set(expected_cells)
        if self.results_dir.is_dir():
            ids.update(cell_id_from_dir(p.name) for p in self.results_dir.iterdir() if p.is_dir())
        return [self.load_scenario(cell_id) for cell_id in sorted(ids)]

    def write_summary(self, expected_cells: Iterable[str] = ()) -> Path:
        """``summary.json``: ``{scenario cell id: verdict}`` for the scenarios of this run."""
        summary = {r.cell_id: r.verdict for r in self.load_scenarios(expected_cells)}
        path = self.root / SUMMARY_FILE
        write_json_atomic(path, summary)
        return path
