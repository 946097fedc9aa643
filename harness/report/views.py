"""What the report's pages show, prepared from records: cell views, build panels, trend strips, logs.

Pure functions of stored records (and of the run folder, for log excerpts and build files); the
templates in ``templates/`` only lay them out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.live.files import write_bytes_atomic
from harness.live.result import ScenarioResult
from harness.live.vocab import CellId, Verdict
from harness.report import stats
from harness.report.history import INFRA, History
from harness.report.junit import clean, first_failure
from harness.report.provenance import source_rows
from harness.report.trends import CellTrend, Trends
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore
from harness.store.untrusted import read_untrusted

ICONS = {"pass": "✔", "fail": "✘", "unsupported": "⊘", "error": "⚠", "not-run": "○"}
LABELS = {"not-run": "not run"}
UNSAFE_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml", ".svg", ".xml", ".mht"}
LOG_HEAD, LOG_TAIL, LOG_MAX_BYTES = 20, 120, 2 << 20
SLOT_PX, SPARK_H = 13, 18  # one night in a trend strip and its sparkline; the sparkline's height


def label(verdict: str) -> str:
    """How a verdict reads on a page (``not-run`` -> ``not run``)."""
    return LABELS.get(str(verdict), str(verdict))


def _mark_view(verdict: str | None) -> tuple[str, str, str]:
    """(icon, css class, words) of one night in a strip."""
    if verdict is None:
        return "·", "v-absent", "not in this run"
    if verdict == INFRA:
        return ICONS["error"], "v-infra", "error of the infrastructure"
    return ICONS.get(verdict, "?"), f"v-{verdict}", label(verdict)


def _sparkline(trend: CellTrend) -> dict[str, Any] | None:
    """Pause time per night as an inline SVG polyline (broken where a night has no pause); None if none."""
    points = [(i, m.pause, m.red) for i, m in enumerate(trend.marks) if m.pause is not None]
    if not points:
        return None
    lo, hi = min(p for _, p, _ in points), max(p for _, p, _ in points)

    def y(value: float) -> float:
        return SPARK_H / 2 if hi == lo else 3 + (SPARK_H - 6) * (hi - value) / (hi - lo)

    dots = [{"x": SLOT_PX * i + SLOT_PX / 2, "y": y(p), "red": red} for i, p, red in points]
    lines: list[list[str]] = []
    previous = -2
    for (i, _, _), dot in zip(points, dots, strict=True):
        if i - 1 != previous:  # a night without a pause breaks the line
            lines.append([])
        lines[-1].append(f"{dot['x']:.1f},{dot['y']:.1f}")
        previous = i
    return {
        "width": SLOT_PX * len(trend.marks),
        "height": SPARK_H,
        "lines": [" ".join(line) for line in lines if len(line) > 1],
        "dots": dots,
        "lo": lo,
        "hi": hi,
        "n": len(points),
    }


def trend_view(trend: CellTrend | None, prefix: str = "") -> dict[str, Any] | None:
    """A cell's strip (one mark per night), sparkline and red streak; ``prefix`` makes hrefs relative."""
    if trend is None:
        return None
    marks = []
    for m in trend.marks:
        icon, css, words = _mark_view(m.verdict)
        pause = f" · pause {m.pause:.1f} ms" if m.pause is not None else ""
        marks.append(
            {
                "icon": icon,
                "css": css,
                "title": f"{m.date} (run {m.run_id}): {words}{pause}",
                "href": prefix + m.href if m.href else "",
            }
        )
    since, before = trend.red_since, trend.before_red
    if len(trend.marks) < 2:  # no earlier run in the window: nothing to say about since when
        since = before = None
    return {
        "marks": marks,
        "spark": _sparkline(trend),
        "red_since": since.date if since else "",
        "red_since_run": since.run_id if since else "",
        "before_red": (before.date, label(before.verdict or "")) if before else None,
        "regression": trend.regression,
        "before_window": trend.red_before_window,
        "first_night": trend.marks[0].date if trend.marks else "",
        "last_night": trend.marks[-1].date if trend.marks else "",
    }


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


def cell_view(r: ScenarioResult, history: History | None, trends: Trends | None = None) -> dict[str, Any]:
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
        "trend": trend_view(trends.of(r.cell_id) if trends else None),
    }


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


def _build_summary(record: BuildRecord) -> str:
    """The one line a collapsed build panel shows: QEMU version, cache hit or time, image."""
    parts = [record.qemu_version or ""]
    total = record.durations.get("total_s")
    if record.cache_hit:
        parts.append("cache hit")
    elif total is not None:
        parts.append(f"built in {float(total):.0f} s")
    if record.image is not None:
        parts.append(f"image {record.image.name}")
    return " · ".join(p for p in parts if p)


def build_view(
    store: RunStore, cell_id: str, record: BuildRecord, history: History | None, trends: Trends | None = None
) -> dict[str, Any]:
    change = history.status(cell_id, "build") if history else None
    raw = record.to_json()
    return {
        "id": cell_id,
        "anchor": "build-" + CellId(cell_id).folder(),
        "verdict": str(record.verdict),
        "label": label(record.verdict),
        "why": clean(record.why()) if not record.ok else "",
        "r": raw,
        "source": source_rows(record.source, record.ok),
        "summary": _build_summary(record),
        "series": record.series,
        "triage": raw.get("triage"),
        "tail": clean("\n".join(record.log_tail)),
        "files": _copy_build_files(store, cell_id, record),
        "change": change[0] if change else "",
        "before": label(change[1].before or "") if change else "",
        "trend": trend_view(trends.of(cell_id, "build") if trends else None),
    }
