"""The page of a bisection (``bisect/<cell folder>/index.html``) and what the dashboard shows of it.

Read from ``bisect.json`` only (:class:`~harness.store.bisect_record.BisectRecord`) and the steps' own
folders (their build records and results): no Docker, no git. The dashboard of a run folder lists every
bisection in it and puts the answer beside the regression it explains (:func:`bisection_views`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from harness.live.files import write_text_atomic
from harness.live.vocab import CellId
from harness.report import views
from harness.store.bisect_record import BISECT_FILE, PAGE_FILE, BisectRecord, BisectStep

TEMPLATES = Path(__file__).resolve().parent / "templates"
OUTCOME_CSS = {
    "good": "pass", "bad": "fail", "broken": "error", "flaky": "unsupported", "unjudged": "not-run",
}  # fmt: skip
STATUS_CSS = {
    "found": "fail", "ambiguous": "error", "budget": "error", "invalid": "not-run",
    "error": "error", "interrupted": "not-run", "running": "running",
}  # fmt: skip


def load(folder: Path) -> BisectRecord | None:
    """The bisection record of ``folder`` (None when missing or not one)."""
    try:
        return BisectRecord.from_json(json.loads((folder / BISECT_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _step_files(folder: Path, step: BisectStep, cell: str) -> dict[str, Any]:
    """Links into a step's folder (relative to the bisection's page) and the build's log tail."""
    base = folder / step.folder
    out: dict[str, Any] = {"build": None, "result": None, "logs": [], "tail": ""}
    builds = sorted((base / "builds").glob("*/build.json")) if (base / "builds").is_dir() else []
    if builds:
        out["build"] = builds[0].relative_to(folder).as_posix()
        try:
            record = json.loads(builds[0].read_text(encoding="utf-8"))
            out["tail"] = "\n".join(str(x) for x in record.get("log_tail") or [])[-4000:]
        except (OSError, ValueError, AttributeError):
            pass
    results = base / "results" / CellId(cell).folder()
    if (results / "result.json").is_file():
        out["result"] = (results / "result.json").relative_to(folder).as_posix()
        for log in sorted(results.iterdir()):
            safe = log.suffix.lower() not in views.UNSAFE_SUFFIXES and log.name != "result.json"
            if safe and log.is_file() and not log.is_symlink():
                out["logs"].append({"name": log.name, "href": log.relative_to(folder).as_posix()})
    return out


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(icons=views.ICONS, labels=views.LABELS)
    return env


def render_bisection(folder: Path, record: BisectRecord, run_id: str, generated: str = "") -> Path:
    """Write the page of the bisection in ``folder``; returns its path."""
    generated = generated or datetime.now(UTC).isoformat(timespec="seconds")
    steps = [
        {"s": s, "css": OUTCOME_CSS.get(s.outcome, "running"), "files": _step_files(folder, s, record.cell)}
        for s in record.steps
    ]
    timed = [s.seconds for s in record.steps if s.seconds]
    page = folder / PAGE_FILE
    write_text_atomic(
        page,
        _env()
        .get_template("bisect.html.j2")
        .render(
            page={"run_id": run_id, "generated": generated},
            b=record,
            steps=steps,
            status_css=STATUS_CSS.get(record.status, "error"),
            mean_step=(sum(timed) / len(timed)) if timed else None,
            total=sum(timed),
        ),
    )
    return page


def bisection_views(run_dir: Path) -> list[dict[str, Any]]:
    """One entry per bisection in the run folder (``bisect/*/bisect.json``), for the dashboard."""
    out = []
    root = Path(run_dir) / "bisect"
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or folder.is_symlink():
            continue
        record = load(folder)
        if record is None:
            continue
        out.append(
            {
                "cell": record.cell,
                "status": record.status,
                "css": STATUS_CSS.get(record.status, "error"),
                "summary": record.summary(),
                "href": f"bisect/{folder.name}/{PAGE_FILE}",
                "steps": len(record.steps),
                "builds": record.builds(),
                "range": f"{record.good.short}..{record.bad.short}",
                "commits": record.commits,
                "first_bad": record.first_bad,
            }
        )
    return out
