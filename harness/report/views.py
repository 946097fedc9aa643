"""What the report's pages show, prepared from records: grid, chart, cell views, build panels, logs.

Pure functions of stored records (and of the run folder, for log excerpts and build files); the
templates in ``templates/`` only lay them out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.live.files import write_bytes_atomic
from harness.live.result import ScenarioResult
from harness.live.vocab import Accel, CellId, Mode, Verdict
from harness.report import stats
from harness.report.history import History
from harness.report.junit import clean, first_failure
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore
from harness.store.untrusted import read_untrusted

ICONS = {"pass": "✔", "fail": "✘", "unsupported": "⊘", "error": "⚠", "not-run": "○"}
LABELS = {"not-run": "not run"}
UNSAFE_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml", ".svg", ".xml", ".mht"}
LOG_HEAD, LOG_TAIL, LOG_MAX_BYTES = 20, 120, 2 << 20
SCENARIO_ORDER = tuple(str(m) for m in Mode)
ACCEL_ORDER = tuple(str(a) for a in Accel)


def label(verdict: str) -> str:
    """How a verdict reads on a page (``not-run`` -> ``not run``)."""
    return LABELS.get(str(verdict), str(verdict))


def _order(values: Iterable[str], canonical: tuple[str, ...]) -> list[str]:
    return sorted(set(values), key=lambda v: (canonical.index(v) if v in canonical else len(canonical), v))


def row_of(cell_id: str) -> str:
    """The grid row of a scenario cell: its build cell ``tree/profile`` (or ``upgrade/<name>``)."""
    parts = cell_id.split("/")
    return "/".join(parts[:-2]) if len(parts) >= 4 else cell_id


def count(verdicts: Iterable[str], keys: Iterable[str]) -> dict[str, int]:
    """``{verdict: n}`` with every key of ``keys`` present (0 when absent)."""
    counts = {str(k): 0 for k in keys}
    for v in verdicts:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return counts


def _safe_file(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` if it is a regular file inside ``folder`` (no ``..`` escapes, no links out)."""
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


def logs(store: RunStore, r: ScenarioResult) -> list[dict[str, Any]]:
    """The cell's logs, serial first: an excerpt of each and a link to the whole file."""
    folder = store.results_dir / CellId(r.cell_id).folder()
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
            href = f"../results/{folder.name}/{path.relative_to(folder.resolve()).as_posix()}"
        out.append({"name": name, "href": href, "text": text, "lines": lines, "omitted": omitted})
    return out


def diff_lines(text: str) -> list[tuple[str, str]] | None:
    """A unified diff as ``[(css class, line)]``; None when ``text`` is not a diff."""
    lines = text.splitlines()
    if len(lines) < 3 or not lines[0].startswith("--- ") or not lines[1].startswith("+++ "):
        return None
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [("file" if i < 2 else kinds.get(ln[:1], "ctx"), ln) for i, ln in enumerate(lines)]


def qmp_rows(r: ScenarioResult) -> list[dict[str, Any]]:
    """The QMP timeline: every message with its offset (ms) from the cell's first message."""
    if not r.qmp:
        return []
    t0 = min(q.t for q in r.qmp)
    rows = []
    for q in sorted(r.qmp, key=lambda q: q.t):
        data = json.dumps(q.data, ensure_ascii=False, sort_keys=True) if q.data else ""
        rows.append({"ms": (q.t - t0) * 1000, "side": q.side, "kind": q.kind, "name": q.name, "data": data})
    return rows


def cell_view(r: ScenarioResult, history: History | None) -> dict[str, Any]:
    change = history.status(r.cell_id) if history else None
    return {
        "id": r.cell_id,
        "verdict": str(r.verdict),
        "label": label(r.verdict),
        "href": f"cells/{CellId(r.cell_id).folder()}.html",
        "duration": r.timings.get("total_s"),
        "pause": r.timings.get("pause_ms"),
        "spread": stats.spread(r.pause_samples()) if len(r.pause_samples()) > 1 else {},
        "fallback": r.accel_used if r.fell_back else "",
        "why": "" if r.verdict is Verdict.PASS else clean(first_failure(r)),
        "change": change[0] if change else "",
        "before": label(change[1].before or "") if change else "",
    }


def grid(views: list[dict[str, Any]], results: list[ScenarioResult]) -> dict[str, Any]:
    by_id = {v["id"]: v for v in views}
    rows = sorted({row_of(r.cell_id) for r in results}, key=lambda k: (k.startswith("upgrade/"), k))
    scenarios = _order((str(r.scenario) for r in results), SCENARIO_ORDER)
    accels = _order((str(r.accel) for r in results), ACCEL_ORDER)
    cols = [
        (s, a) for s in scenarios for a in accels if any(r.scenario == s and r.accel == a for r in results)
    ]
    cells = {(row_of(r.cell_id), str(r.scenario), str(r.accel)): by_id[r.cell_id] for r in results}
    spans = [(s, sum(1 for c in cols if c[0] == s)) for s in scenarios]
    return {"rows": rows, "cols": cols, "spans": [x for x in spans if x[1]], "cells": cells}


def chart(views: list[dict[str, Any]]) -> dict[str, Any]:
    bars = [v for v in views if v["pause"] is not None]
    top = max((v["pause"] for v in bars), default=0.0) or 1.0
    label_w, bar_w, row_h = 330, 460, 22
    top = max([top, *(v["spread"]["max"] for v in bars if v["spread"])])
    items = []
    for i, v in enumerate(bars):
        item = {"view": v, "y": 24 + i * row_h, "w": max(1.0, bar_w * v["pause"] / top)}
        if v["spread"]:  # a whisker from the fastest to the slowest repetition
            item["lo"], item["hi"] = bar_w * v["spread"]["min"] / top, bar_w * v["spread"]["max"] / top
        items.append(item)
    return {"items": items, "x0": label_w, "bar_w": bar_w, "height": 34 + len(bars) * row_h, "top": top}


def _copy_build_files(store: RunStore, cell_id: str, record: BuildRecord) -> dict[str, str]:
    """Copy the build's log and reproduce.sh beside build.json; return their hrefs from index.html.

    Only the build's own files (``build.log`` and the ``reproduce.sh`` beside it, regular files, not
    symlinks) are read, and they are written atomically, so a planted link never redirects the copy."""
    dest = store.build_dir(cell_id)
    src_log = Path(record.log) if record.log else None
    if src_log is not None and src_log.name != "build.log":  # only ever copy the build's own files
        src_log = None
    hrefs = {}
    for name, src in (
        ("build.log", src_log),
        ("reproduce.sh", src_log.parent / "reproduce.sh" if src_log else None),
    ):
        target = dest / name
        if src is not None and src.parent.resolve() != dest.resolve():
            with contextlib.suppress(OSError, ValueError):
                data = read_untrusted(src.parent, src.name, LOG_MAX_BYTES * 64)
                write_bytes_atomic(target, data, 0o755 if name.endswith(".sh") else 0o644)
        if target.is_file() and not target.is_symlink():
            hrefs[name] = f"builds/{dest.name}/{name}"
    return hrefs


def build_view(store: RunStore, cell_id: str, record: BuildRecord, history: History | None) -> dict[str, Any]:
    change = history.status(cell_id, "build") if history else None
    raw = record.to_json()
    return {
        "id": cell_id,
        "anchor": "build-" + CellId(cell_id).folder(),
        "verdict": str(record.verdict),
        "label": label(record.verdict),
        "why": clean(record.why()) if not record.ok else "",
        "r": raw,
        "source": record.source,
        "series": record.series,
        "triage": raw.get("triage"),
        "tail": clean("\n".join(record.log_tail)),
        "files": _copy_build_files(store, cell_id, record),
        "change": change[0] if change else "",
        "before": label(change[1].before or "") if change else "",
    }
