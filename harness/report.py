"""Render a run folder into what a maintainer reads: dashboard, cell pages, JUnit, JSON, console summary.

Input: a run folder (``reports/<run-id>/``, see :mod:`harness.results`) of stored results only; no Docker,
no QEMU. Output, written into the same folder so it is self-contained (no CDN, no network, no JavaScript):

    index.html            totals, regressions first, the matrix grid, build panels, a pause-time chart
    cells/<cell>.html     one page per scenario cell: steps, QMP timeline, checks, diffs, logs, reproduce
    builds/<cell>/        build.json plus copies of the build's build.log and reproduce.sh
    junit.xml             see :mod:`harness.junit`
    results.json          every scenario result and build record (+ history) for scripts
    summary.json          {scenario cell id: verdict}

Everything taken from logs, argv and QEMU output is escaped by jinja2's autoescape; pages also carry a
Content-Security-Policy forbidding scripts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from harness.history import (
    RESULTS_JSON,
    Change,
    History,
    Verdicts,
    build_verdict,
    history_for,
    scenario_verdict,
)
from harness.junit import clean, first_failure, write_junit
from harness.results import (
    SUMMARY_FILE,
    VERDICTS,
    RunStore,
    ScenarioResult,
    cell_dir_name,
    write_json_atomic,
    write_text_atomic,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
SCENARIO_ORDER = ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
ACCEL_ORDER = ("tcg", "kvm")
ICONS = {"pass": "✔", "fail": "✘", "unsupported": "⊘", "error": "⚠", "not-run": "○"}
LABELS = {"not-run": "not run"}
UNSAFE_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml", ".svg", ".xml", ".mht"}
NOT_RUN_REASON = "expected in this run but never started (the run stopped early or was interrupted)"
LOG_HEAD, LOG_TAIL, LOG_MAX_BYTES = 20, 120, 2 << 20


@dataclass
class RenderSummary:
    """What :func:`render_run` wrote, and the text the CLI prints."""

    run_dir: Path
    index: Path
    junit: Path
    results_json: Path
    summary_json: Path
    cell_pages: list[Path]
    totals: dict[str, int]  # scenario verdict -> count (every verdict of VERDICTS present)
    build_totals: dict[str, int]
    history: History | None
    console: str

    @property
    def ok(self) -> bool:
        """No scenario or build failed or errored (unsupported is fine, not run is not)."""
        bad = ("fail", "error", "not-run")
        return not any(self.totals.get(v) for v in bad) and not any(
            n for v, n in self.build_totals.items() if v != "pass"
        )


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = lambda v: "" if v is None else f"{float(v):.1f} ms"
    env.filters["secs"] = lambda v: "" if v is None else f"{float(v):.1f} s"
    env.filters["tojson_text"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True)
    env.globals.update(icons=ICONS, labels=LABELS)
    return env


def _label(verdict: str) -> str:
    return LABELS.get(verdict, verdict)


def _order(values: Iterable[str], canonical: tuple[str, ...]) -> list[str]:
    return sorted(set(values), key=lambda v: (canonical.index(v) if v in canonical else len(canonical), v))


def row_of(cell_id: str) -> str:
    """The grid row of a scenario cell: its build cell ``tree/profile`` (or ``upgrade/<name>``)."""
    parts = cell_id.split("/")
    return "/".join(parts[:-2]) if len(parts) >= 4 else cell_id


def load_results(store: RunStore, expected_cells: Iterable[str] = ()) -> list[ScenarioResult]:
    """Stored results (corrupt -> error) plus ``not-run`` stand-ins for expected cells with no folder."""
    results = {r.cell_id: r for r in store.load_scenarios()}
    for cell_id in expected_cells:
        if cell_id not in results:
            r = ScenarioResult.error(cell_id, NOT_RUN_REASON)
            r.verdict = "not-run"
            results[cell_id] = r
    return [results[k] for k in sorted(results)]


def _count(verdicts: Iterable[str], keys: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(keys, 0)
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _safe_file(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` if it is a file inside ``folder`` (no ``..`` escapes, no absolute paths)."""
    try:
        path = (folder / rel).resolve()
        path.relative_to(folder.resolve())
    except (ValueError, OSError):
        return None
    return path if path.is_file() else None


def _excerpt(path: Path) -> tuple[str, int, int]:
    """(text, total lines, lines omitted): the head and tail of a log, terminal escapes removed."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if size > LOG_MAX_BYTES:
            head = f.read(LOG_MAX_BYTES // 2)
            f.seek(size - LOG_MAX_BYTES // 2)
            data = head + b"\n[... middle of the file skipped ...]\n" + f.read()
        else:
            data = f.read()
    lines = clean(data.decode("utf-8", "replace")).splitlines()
    if len(lines) <= LOG_HEAD + LOG_TAIL + 10:
        return "\n".join(lines), len(lines), 0
    omitted = len(lines) - LOG_HEAD - LOG_TAIL
    text = "\n".join([*lines[:LOG_HEAD], f"[... {omitted} lines omitted ...]", *lines[-LOG_TAIL:]])
    return text, len(lines), omitted


def _logs(store: RunStore, r: ScenarioResult) -> list[dict[str, Any]]:
    folder = store.results_dir / cell_dir_name(r.cell_id)
    rank = ("serial", "stderr")
    order = sorted(r.logs.items(), key=lambda kv: ([kv[0].startswith(p) for p in rank] + [True]).index(True))
    out = []
    for name, rel in order:
        path = _safe_file(folder, rel)
        if path is None:
            out.append({"name": name, "href": None, "text": f"({rel} is missing)", "lines": 0, "omitted": 0})
            continue
        text, lines, omitted = _excerpt(path)
        href = None
        if path.suffix.lower() not in UNSAFE_SUFFIXES:
            href = f"../results/{cell_dir_name(r.cell_id)}/{path.relative_to(folder.resolve()).as_posix()}"
        out.append({"name": name, "href": href, "text": text, "lines": lines, "omitted": omitted})
    return out


def _diff_lines(text: str) -> list[tuple[str, str]] | None:
    """A unified diff as ``[(css class, line)]``; None when ``text`` is not a diff."""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("--- ") or not lines[1].startswith("+++ "):
        return None
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [("file" if i < 2 else kinds.get(ln[:1], "ctx"), ln) for i, ln in enumerate(lines)]


def _qmp_rows(r: ScenarioResult) -> list[dict[str, Any]]:
    if not r.qmp:
        return []
    t0 = min(q.t for q in r.qmp)
    rows = []
    for q in sorted(r.qmp, key=lambda q: q.t):
        data = json.dumps(q.data, ensure_ascii=False, sort_keys=True) if q.data else ""
        rows.append({"ms": (q.t - t0) * 1000, "side": q.side, "kind": q.kind, "name": q.name, "data": data})
    return rows


def _cell_view(r: ScenarioResult, history: History | None) -> dict[str, Any]:
    change = history.status(r.cell_id) if history else None
    return {
        "id": r.cell_id,
        "verdict": r.verdict,
        "label": _label(r.verdict),
        "href": f"cells/{cell_dir_name(r.cell_id)}.html",
        "duration": r.timings.get("total_s"),
        "pause": r.timings.get("pause_ms"),
        "fallback": r.accel_used if r.accel_used and r.accel_used != r.accel else "",
        "why": "" if r.verdict == "pass" else clean(first_failure(r)),
        "change": change[0] if change else "",
        "before": _label(change[1].before or "") if change else "",
    }


def _grid(views: list[dict[str, Any]], results: list[ScenarioResult]) -> dict[str, Any]:
    by_id = {v["id"]: v for v in views}
    rows = sorted({row_of(r.cell_id) for r in results}, key=lambda k: (k.startswith("upgrade/"), k))
    scenarios = _order((r.scenario for r in results), SCENARIO_ORDER)
    accels = _order((r.accel for r in results), ACCEL_ORDER)
    cols = [
        (s, a) for s in scenarios for a in accels if any(r.scenario == s and r.accel == a for r in results)
    ]
    cells = {(row_of(r.cell_id), r.scenario, r.accel): by_id[r.cell_id] for r in results}
    spans = [(s, sum(1 for c in cols if c[0] == s)) for s in scenarios]
    return {"rows": rows, "cols": cols, "spans": [x for x in spans if x[1]], "cells": cells}


def _chart(views: list[dict[str, Any]]) -> dict[str, Any]:
    bars = [v for v in views if v["pause"] is not None]
    top = max((v["pause"] for v in bars), default=0.0) or 1.0
    label_w, bar_w, row_h = 330, 460, 22
    items = [
        {"view": v, "y": 24 + i * row_h, "w": max(1.0, bar_w * v["pause"] / top)} for i, v in enumerate(bars)
    ]
    return {"items": items, "x0": label_w, "bar_w": bar_w, "height": 34 + len(bars) * row_h, "top": top}


def _copy_build_files(store: RunStore, cell_id: str, record: dict[str, Any]) -> dict[str, str]:
    """Copy the build's log and reproduce.sh beside build.json; return their hrefs from index.html."""
    dest = store.builds_dir / cell_dir_name(cell_id)
    dest.mkdir(parents=True, exist_ok=True)
    src_log = Path(str(record["log"])) if record.get("log") else None
    if src_log is not None and src_log.name != "build.log":  # only ever copy the build's own files
        src_log = None
    hrefs = {}
    for name, src in (
        ("build.log", src_log),
        ("reproduce.sh", src_log.parent / "reproduce.sh" if src_log else None),
    ):
        target = dest / name
        try:
            if src is not None and src.is_file() and src.resolve() != target.resolve():
                shutil.copyfile(src, target)
        except OSError:
            pass
        if target.is_file():
            hrefs[name] = f"builds/{cell_dir_name(cell_id)}/{name}"
    return hrefs


def _build_view(store: RunStore, cell_id: str, record: dict[str, Any], history: History | None) -> dict:
    verdict = str(record.get("verdict") or "error")
    change = history.status(cell_id, "build") if history else None
    series = record.get("series") if isinstance(record.get("series"), dict) else None
    triage = record.get("triage") if isinstance(record.get("triage"), dict) else None
    tail = record.get("log_tail") or []
    return {
        "id": cell_id,
        "anchor": "build-" + cell_dir_name(cell_id),
        "verdict": verdict,
        "label": _label(verdict),
        "why": build_why(record) if verdict != "pass" else "",
        "r": record,
        "source": record.get("source") if isinstance(record.get("source"), dict) else {},
        "series": series,
        "triage": triage,
        "tail": clean("\n".join(str(x) for x in tail)) if isinstance(tail, list) else clean(str(tail)),
        "files": _copy_build_files(store, cell_id, record),
        "change": change[0] if change else "",
        "before": _label(change[1].before or "") if change else "",
    }


def _span(results: list[ScenarioResult], builds: dict[str, dict[str, Any]]) -> tuple[str, str]:
    starts = [r.started_at for r in results if r.started_at] + [
        str(b["started_at"]) for b in builds.values() if b.get("started_at")
    ]
    ends = [r.finished_at for r in results if r.finished_at] + [
        str(b["finished_at"]) for b in builds.values() if b.get("finished_at")
    ]
    return (min(starts) if starts else "", max(ends) if ends else "")


def build_why(record: dict[str, Any]) -> str:
    """One line on why a build did not pass: stage, then error, triage cause or the last log line."""
    tail = [str(x).strip() for x in record.get("log_tail") or [] if str(x).strip()]
    triage = record.get("triage") if isinstance(record.get("triage"), dict) else {}
    why = record.get("error") or triage.get("cause") or (tail[-1] if tail else "") or "no error recorded"
    return clean(f"stage {record.get('stage') or '?'}: {why}")


def _arrow(c: Change) -> str:
    if c.before is None:
        return _label(c.after or "")
    if c.after is None:
        return f"was {_label(c.before)}"
    return f"{_label(c.before)} -> {_label(c.after)}"


def console_summary(
    run_dir: Path,
    results: list[ScenarioResult],
    builds: dict[str, dict[str, Any]],
    history: History | None,
) -> str:
    """Plain text for the terminal: regressions first, then totals, failures, fixes and new cells."""
    out = []
    if history is not None:
        out.append(f"since {history.baseline}: {len(history.regressions)} regression(s)")
        for c in history.regressions:
            out.append(f"  REGRESSION  {c.kind} {c.cell_id}: {_arrow(c)}")
    totals = _count((r.verdict for r in results), VERDICTS)
    out.append(
        f"scenarios: {len(results)} cells: "
        + ", ".join(f"{n} {_label(v)}" for v, n in totals.items() if n or v in ("pass", "fail"))
    )
    build_totals = _count(
        (str(b.get("verdict") or "error") for b in builds.values()), ("pass", "fail", "error")
    )
    out.append(f"builds: {len(builds)} cells: " + ", ".join(f"{n} {v}" for v, n in build_totals.items() if n))
    for cell_id, b in sorted(builds.items()):
        if b.get("verdict") != "pass":
            out.append(
                f"  {str(b.get('verdict') or 'error').upper():<11} build {cell_id}: {build_why(b)[:100]}"
            )
    for r in results:
        if r.verdict in ("fail", "error", "not-run"):
            out.append(f"  {_label(r.verdict).upper():<11} {r.cell_id}: {clean(first_failure(r))[:100]}")
    if history is not None:
        for title, changes in (
            ("fixed", history.fixes),
            ("changed", history.changed),
            ("new", history.new),
            ("removed", history.removed),
        ):
            if changes:
                out.append(f"{title}: " + ", ".join(f"{c.cell_id} ({_arrow(c)})" for c in changes))
        out.append(f"unchanged: {len(history.unchanged)}")
    out.append(f"report: {run_dir / 'index.html'}")
    return "\n".join(out)


def render_run(
    run_dir: Path, *, baseline: Path | None = None, expected_cells: Iterable[str] = ()
) -> RenderSummary:
    """Render every output file of the run folder ``run_dir`` and return what was written.

    ``baseline``: a run folder to compare with (default: the previous run beside ``run_dir``).
    ``expected_cells``: scenario cell ids the run was meant to hold; those with no result folder show
    ``not run``. Raises ``ConfigError`` for a ``baseline`` that is not a run folder; never for a damaged
    result (that cell becomes ``error``).
    """
    run_dir = Path(run_dir).resolve()
    store = RunStore(run_dir)
    results = load_results(store, expected_cells)
    builds = store.load_builds()
    now = Verdicts(  # as history compares them: infrastructure errors are not regressions
        {r.cell_id: scenario_verdict(r.verdict, r.reason) for r in results},
        {k: build_verdict(b) for k, b in builds.items()},
    )
    history = history_for(run_dir, now, baseline)
    totals = _count((r.verdict for r in results), VERDICTS)
    build_totals = _count(
        (str(b.get("verdict") or "error") for b in builds.values()), ("pass", "fail", "error")
    )
    views = [_cell_view(r, history) for r in results]
    build_views = [_build_view(store, k, b, history) for k, b in sorted(builds.items())]
    build_views.sort(key=lambda b: b["verdict"] == "pass")  # stable: failing builds first, then by id
    started, finished = _span(results, builds)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    env = _env()
    page = {"run_id": store.run_id, "generated": generated, "started": started, "finished": finished}
    index = run_dir / "index.html"
    write_text_atomic(
        index,
        env.get_template("index.html.j2").render(
            page=page,
            totals=totals,
            build_totals=build_totals,
            history=history,
            grid=_grid(views, results),
            builds=build_views,
            chart=_chart(views),
            views=views,
        ),
    )
    pages = []
    by_view = {v["id"]: v for v in views}
    build_anchor = {b["id"]: b["anchor"] for b in build_views}
    for r in results:
        path = run_dir / by_view[r.cell_id]["href"]
        checks = [{"c": c, "diff": _diff_lines(c.detail)} for c in r.checks]
        write_text_atomic(
            path,
            env.get_template("cell.html.j2").render(
                page=page,
                r=r,
                v=by_view[r.cell_id],
                checks=checks,
                steps=r.steps,
                qmp=_qmp_rows(r),
                logs=_logs(store, r),
                build_anchor=build_anchor.get(row_of(r.cell_id), ""),
                reason=clean(r.reason),
            ),
        )
        pages.append(path)
    junit = write_junit(run_dir / "junit.xml", results, builds, store.run_id)
    results_json = run_dir / RESULTS_JSON
    write_json_atomic(
        results_json,
        {
            "run_id": store.run_id,
            "generated_at": generated,
            "started_at": started,
            "finished_at": finished,
            "totals": totals,
            "build_totals": build_totals,
            "history": history.to_json() if history else None,
            "scenarios": [r.to_json() for r in results],
            "builds": builds,
        },
    )
    summary_json = run_dir / SUMMARY_FILE
    write_json_atomic(summary_json, {r.cell_id: r.verdict for r in results})
    console = console_summary(run_dir, results, builds, history)
    return RenderSummary(
        run_dir, index, junit, results_json, summary_json, pages, totals, build_totals, history, console
    )
