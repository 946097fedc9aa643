"""A cell's story in time: the step timeline (source and destination side by side, the pause marked) and
the QMP timeline (periodic memory reads folded into one row each).

Steps are timed from the scenario's start (monotonic clock), QMP messages carry epoch seconds (QEMU's
timestamps for events, the host clock for commands). The two are put on one axis through the source's
``migrate`` command, which is sent at the start of the ``migrate`` step; the pause window is the source's
last ``STOP`` event to the destination's first ``RESUME`` after it, as the ``pause-time`` check measures it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from harness.live.result import QmpRecord, ScenarioResult

HMP = "human-monitor-command"
POLL = re.compile(r"^xp\s")  # HMP memory reads: the guest counter and the boot marker, read periodically
_XP_VALUE = re.compile(r":\s*(0x[0-9a-fA-F]+)")
SIDES = ("source", "destination")


@dataclass(frozen=True)
class Window:
    """The guest's pause, in seconds on the steps' clock (scenario start = 0)."""

    stop: float
    resume: float

    @property
    def ms(self) -> float:
        return (self.resume - self.stop) * 1000

    def holds(self, t: float) -> bool:
        return self.stop <= t <= self.resume


def _command_line(q: QmpRecord) -> str:
    args = q.data.get("arguments")
    line = args.get("command-line") if isinstance(args, dict) else None
    return line if isinstance(line, str) else ""


def _data(q: QmpRecord) -> str:
    return json.dumps(q.data, ensure_ascii=False, sort_keys=True) if q.data else ""


def _offset(r: ScenarioResult) -> float | None:
    """Epoch seconds of the steps' zero, from the source's ``migrate`` step and command (None: no anchor)."""
    step = next((s for s in r.steps if s.name == "migrate" and s.side == "source"), None)
    command = next(
        (q for q in r.qmp if q.kind == "command" and q.name == "migrate" and q.side == "source"), None
    )
    return None if step is None or command is None else command.t - step.started


def _epoch_window(r: ScenarioResult) -> tuple[float, float] | None:
    """(source's last STOP, destination's first RESUME at or after it), epoch seconds."""
    stops = [q.t for q in r.qmp if q.kind == "event" and q.name == "STOP" and q.side == "source"]
    if not stops:
        return None
    resumes = [
        q.t
        for q in r.qmp
        if q.kind == "event" and q.name == "RESUME" and q.side == "destination" and q.t >= stops[-1]
    ]
    return (stops[-1], min(resumes)) if resumes else None


def pause_window(r: ScenarioResult) -> Window | None:
    """The guest's pause on the steps' clock (None without STOP/RESUME events or a ``migrate`` anchor)."""
    epoch, offset = _epoch_window(r), _offset(r)
    if epoch is None or offset is None:
        return None
    return Window(epoch[0] - offset, epoch[1] - offset)


def _step_row(t: float, side: str, name: str, paused: bool, **more: Any) -> dict[str, Any]:
    row = {"t": t, "side": side, "name": name, "duration_ms": 0.0, "ok": True, "detail": "", "marker": ""}
    return {**row, "paused": paused, **more}


def step_timeline(r: ScenarioResult) -> dict[str, Any]:
    """Rows in time order: each step in its side's column (harness steps across both), the pause marked.

    Each row: ``{"ms", "side", "name", "duration_ms", "ok", "detail", "paused", "marker"}``; ``marker``
    rows (``"stop"``, ``"resume"``) stand for the pause window's two events."""
    window = pause_window(r)
    rows = [
        _step_row(
            s.started,
            s.side if s.side in SIDES else "harness",
            s.name,
            window is not None and window.holds(s.started),
            duration_ms=s.duration * 1000,
            ok=s.ok,
            detail=s.detail,
        )
        for s in r.steps
    ]
    if window is not None:
        resumed = f"guest resumed: destination RESUME ({window.ms:.1f} ms)"
        rows.append(_step_row(window.stop, "source", "guest paused: source STOP", True, marker="stop"))
        rows.append(_step_row(window.resume, "destination", resumed, True, marker="resume"))
    rows.sort(key=lambda row: (row["t"], row["marker"] != "stop", row["marker"] == "resume"))
    for row in rows:
        row["ms"] = row.pop("t") * 1000
    return {"rows": rows, "window": window}


def _poll_row(q: QmpRecord, t0: float, line: str) -> dict[str, Any]:
    return {
        "ms": (q.t - t0) * 1000,
        "side": q.side,
        "kind": "poll",
        "name": line,
        "data": "",
        "paused": False,
        "reads": [],
    }


def qmp_rows(r: ScenarioResult) -> list[dict[str, Any]]:
    """The QMP timeline: every message with its offset (ms) from the cell's first message.

    Periodic memory reads (HMP ``xp``: the guest's counter and boot marker) are folded: one row per side
    and address, at its first read, with ``reads`` (``[{"ms", "value"}]``: each read and the value it
    returned) for a ``<details>`` list. Rows inside the pause window have ``paused`` set."""
    if not r.qmp:
        return []
    window = _epoch_window(r)
    t0 = min(q.t for q in r.qmp)
    rows: list[dict[str, Any]] = []
    folds: dict[tuple[str, str], dict[str, Any]] = {}
    pending: dict[str, dict[str, Any]] = {}  # side -> the fold whose read awaits its reply
    for q in sorted(r.qmp, key=lambda q: q.t):
        waiting = pending.pop(q.side, None) if q.kind != "event" else None  # events come in between
        if waiting is not None and q.name == HMP and q.kind in ("reply", "error"):
            value = q.data.get("return", q.data.get("desc", ""))
            found = _XP_VALUE.search(value) if isinstance(value, str) else None
            waiting["reads"][-1]["value"] = found.group(1) if found else str(value).strip()
            continue
        line = _command_line(q) if q.kind == "command" and q.name == HMP else ""
        if POLL.match(line):
            fold = folds.get((q.side, line))
            if fold is None:
                fold = folds[(q.side, line)] = _poll_row(q, t0, line)
                rows.append(fold)
            fold["reads"].append({"ms": (q.t - t0) * 1000, "value": "(no reply)"})
            pending[q.side] = fold
            continue
        paused = window is not None and window[0] <= q.t <= window[1]
        rows.append(
            {
                "ms": (q.t - t0) * 1000,
                "side": q.side,
                "kind": q.kind,
                "name": q.name,
                "data": _data(q),
                "paused": paused,
                "reads": [],
            }
        )
    for fold in folds.values():
        reads = fold["reads"]
        fold["data"] = (
            f"{len(reads)} read(s) from +{reads[0]['ms']:.1f} to +{reads[-1]['ms']:.1f} ms · "
            f"first {reads[0]['value']} · last {reads[-1]['value']}"
        )
    return rows
