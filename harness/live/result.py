"""The scenario result: what the container writes for one cell and every later stage reads.

:class:`ScenarioResult` holds the verdict, every :class:`Check` (expected vs observed), the timed
:class:`Step` list and every :class:`QmpRecord` of both QEMUs. ``to_json``/``from_json`` give the JSON of
``result.json``; ``from_json`` is tolerant of records written by earlier releases (only ``cell_id`` is
required) and strict about types (a record that is not a result raises ``ValueError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from harness.live.vocab import CellId, CheckVerdict, Verdict


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


def _verdict(text: object, default: Verdict = Verdict.ERROR) -> Verdict:
    try:
        return Verdict(str(text))
    except ValueError:
        return default


@dataclass
class Check:
    """One named check of a scenario: what was expected, what was seen, and the evidence."""

    name: str
    verdict: CheckVerdict
    expected: str
    observed: str
    detail: str = ""  # e.g. a unified diff

    def __post_init__(self) -> None:
        self.verdict = CheckVerdict(self.verdict)  # a plain "pass" becomes the enum (ValueError if unknown)

    @property
    def failed(self) -> bool:
        return self.verdict is CheckVerdict.FAIL

    def to_json(self) -> dict[str, Any]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Check:
        try:
            verdict = CheckVerdict(str(d.get("verdict", "fail")))
        except ValueError:
            verdict = CheckVerdict.FAIL
        return cls(
            name=str(d["name"]),
            verdict=verdict,
            expected=str(d.get("expected", "")),
            observed=str(d.get("observed", "")),
            detail=str(d.get("detail", "")),
        )


@dataclass
class Step:
    """One timed step of a scenario (seconds since the scenario started)."""

    name: str
    side: str
    started: float
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
    """One QMP message: a command, its reply or error, or an event (with QEMU's own timestamp)."""

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
    """The result of one scenario cell (``result.json``)."""

    cell_id: str
    scenario: str
    accel: str
    accel_used: str = ""
    verdict: Verdict = Verdict.NOT_RUN
    reason: str = ""
    infra: bool = False  # an error of the machinery (engine, disk), not of QEMU or the tree
    checks: list[Check] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    qmp: list[QmpRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # total_s, pause_ms, downtime_ms, ...
    samples: list[dict[str, float]] = field(default_factory=list)  # one per repetition (--repeat)
    qemu_version: dict[str, str] = field(default_factory=dict)  # {"source": ..., "destination": ...}
    logs: dict[str, str] = field(default_factory=dict)  # name -> file name in the cell's result folder
    reproduce: str = ""
    started_at: str = ""  # ISO 8601
    finished_at: str = ""
    machine: str = ""  # the machine profile ("" in results of earlier releases: minimal)
    migration: str = ""  # the migration option set ("" in results of earlier releases: default)
    guest: dict[str, str] = field(default_factory=dict)  # provenance of the Linux guest (kernel, digests)
    figures: dict[str, float] = field(default_factory=dict)  # disk records, stream lines and gap, ...

    def __post_init__(self) -> None:
        self.verdict = Verdict(self.verdict)  # a plain "pass" becomes the enum (ValueError if unknown)

    @property
    def fell_back(self) -> bool:
        """KVM was asked for but the cell ran under TCG."""
        return bool(self.accel_used) and self.accel_used != self.accel

    def pause_samples(self) -> list[float]:
        """Every repetition's pause (ms); the one pause of a cell run once."""
        if self.samples:
            return [s["pause_ms"] for s in self.samples if "pause_ms" in s]
        return [self.timings["pause_ms"]] if "pause_ms" in self.timings else []

    def first_failed_check(self) -> Check | None:
        return next((c for c in self.checks if c.failed), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "cell_id": str(self.cell_id),
            "scenario": str(self.scenario),
            "accel": str(self.accel),
            "accel_used": str(self.accel_used),
            "verdict": str(self.verdict),
            "reason": self.reason,
            "infra": self.infra,
            "checks": [c.to_json() for c in self.checks],
            "steps": [s.to_json() for s in self.steps],
            "qmp": [q.to_json() for q in self.qmp],
            "timings": dict(self.timings),
            "samples": [dict(s) for s in self.samples],
            "qemu_version": dict(self.qemu_version),
            "logs": dict(self.logs),
            "reproduce": self.reproduce,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "machine": self.machine,
            "migration": self.migration,
            "guest": dict(self.guest),
            "figures": dict(self.figures),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScenarioResult:
        """Inverse of :meth:`to_json`; only ``cell_id`` is mandatory, unknown keys are ignored.

        Raises ``ValueError``/``KeyError``/``TypeError`` on a record that is not a scenario result. An
        unknown verdict becomes ``error`` with the reason saying so.
        """
        if not isinstance(d, dict):
            raise ValueError(f"a scenario result must be a JSON object, not {type(d).__name__}")
        cell_id = str(CellId(str(d["cell_id"])))
        scenario, accel = scenario_and_accel(cell_id)
        verdict = _verdict(d.get("verdict", "error"))
        reason = str(d.get("reason", ""))
        if verdict.value != str(d.get("verdict", "error")):
            reason = f"unknown verdict {d.get('verdict')!r}" + (f"; {reason}" if reason else "")
        return cls(
            cell_id=cell_id,
            scenario=str(d.get("scenario") or scenario),
            accel=str(d.get("accel") or accel),
            accel_used=str(d.get("accel_used", "")),
            verdict=verdict,
            reason=reason,
            infra=bool(d.get("infra", False)),
            checks=[Check.from_json(c) for c in _list(d, "checks")],
            steps=[Step.from_json(s) for s in _list(d, "steps")],
            qmp=[QmpRecord.from_json(q) for q in _list(d, "qmp")],
            timings={str(k): float(v) for k, v in _dict(d, "timings").items() if v is not None},
            samples=[
                {str(k): float(v) for k, v in s.items() if isinstance(v, int | float)}
                for s in _list(d, "samples")
                if isinstance(s, dict)
            ],
            qemu_version={str(k): str(v) for k, v in _dict(d, "qemu_version").items()},
            logs={str(k): str(v) for k, v in _dict(d, "logs").items()},
            reproduce=str(d.get("reproduce", "")),
            started_at=str(d.get("started_at", "")),
            finished_at=str(d.get("finished_at", "")),
            machine=str(d.get("machine", "")),
            migration=str(d.get("migration", "")),
            guest={str(k): str(v) for k, v in _dict(d, "guest").items()},
            figures={str(k): float(v) for k, v in _dict(d, "figures").items() if v is not None},
        )

    @classmethod
    def error(cls, cell_id: str, reason: str, *, infra: bool = False) -> ScenarioResult:
        """A result standing in for one that could not be produced or read."""
        scenario, accel = scenario_and_accel(cell_id)
        return cls(
            cell_id=cell_id, scenario=scenario, accel=accel, verdict=Verdict.ERROR, reason=reason, infra=infra
        )

    @classmethod
    def not_run(cls, cell_id: str, reason: str) -> ScenarioResult:
        scenario, accel = scenario_and_accel(cell_id)
        return cls(cell_id=cell_id, scenario=scenario, accel=accel, verdict=Verdict.NOT_RUN, reason=reason)


def scenario_and_accel(cell_id: str) -> tuple[str, str]:
    """``tree/profile/scenario/accel`` (or ``upgrade/<name>/scenario/accel``) -> (scenario, accel)."""
    parts = cell_id.split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 4 else ("", "")
