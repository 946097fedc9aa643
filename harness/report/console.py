"""What a run prints on the terminal: each build's outcome, each cell's line, the cells table, the summary."""

from __future__ import annotations

from pathlib import Path

from harness.live.result import ScenarioResult
from harness.live.vocab import BUILD_VERDICTS, SCENARIO_VERDICTS, Verdict
from harness.report.history import Change, History
from harness.report.junit import clean, first_failure
from harness.report.trends import Trends
from harness.report.views import count, label
from harness.store.build_record import BuildRecord


def pause_text(result: ScenarioResult) -> str:
    pause = result.timings.get("pause_ms")
    return f"pause {pause:.1f} ms  " if pause is not None else ""


def cell_line(result: ScenarioResult, done: int, total: int) -> str:
    """``[3/14] PASS  <cell>  pause 1.2 ms  <reason>`` (a KVM cell that ran under TCG says so)."""
    first = result.reason.splitlines()[0] if result.reason else ""
    verdict = str(result.verdict).upper() + (" (tcg)" if result.fell_back else "")
    return f"[{done}/{total}] {verdict:<11} {result.cell_id}  {pause_text(result)}{first}"


def cells_table(results: list[ScenarioResult], elapsed: float, where: str) -> list[str]:
    """The closing table of a ``test`` run: one row per cell, then the totals."""
    width = max([len(r.cell_id) for r in results] + [4])
    head = f"{'cell':<{width}}  {'verdict':<11}  {'pause ms':>9}  {'time s':>7}  first failed check / reason"
    out = ["", head]
    for r in results:
        pause = r.timings.get("pause_ms")
        failed = r.first_failed_check()
        reason = r.reason.splitlines()[0] if r.reason else ""
        why = f"{failed.name}: {failed.observed}" if failed else reason
        verdict = str(r.verdict) + (" (tcg)" if r.fell_back else "")
        out.append(
            f"{r.cell_id:<{width}}  {verdict:<11}  {'' if pause is None else f'{pause:.1f}':>9}  "
            f"{r.timings.get('total_s', 0):>7.1f}  {why[:90]}"
        )
    n = count((r.verdict for r in results), SCENARIO_VERDICTS)
    out.append(
        f"scenarios: {n['pass']} passed, {n['fail']} failed, {n['unsupported']} unsupported, "
        f"{n['error']} error in {elapsed:.0f}s  (results: {where})"
    )
    return out


def _arrow(c: Change) -> str:
    if c.before is None:
        return label(c.after or "")
    if c.after is None:
        return f"was {label(c.before)}"
    return f"{label(c.before)} -> {label(c.after)}"


def console_summary(
    run_dir: Path,
    results: list[ScenarioResult],
    builds: dict[str, BuildRecord],
    history: History | None,
    trends: Trends | None = None,
) -> str:
    """Plain text for the terminal: regressions first (new, then still red), totals, failures, fixes."""
    out = []
    if history is not None:
        out.append(f"since {history.baseline}: {len(history.regressions)} regression(s)")
        for c in history.regressions:
            out.append(f"  REGRESSION  {c.kind} {c.cell_id}: {_arrow(c)}")
        for p in history.pause_regressions:
            out.append(f"  PAUSE REGRESSION  {p.cell_id}: {p.shift.describe()}")
    new = {(c.kind, c.cell_id) for c in history.regressions} if history else set()
    for t in trends.open_regressions() if trends else []:
        if (t.kind, t.cell_id) not in new and t.red_since and t.before_red:
            out.append(
                f"  STILL RED   {t.kind} {t.cell_id}: {label(t.marks[-1].verdict or '')} since "
                f"{t.red_since.date} (run {t.red_since.run_id}), {label(t.before_red.verdict or '')} "
                f"on {t.before_red.date}"
            )
    totals = count((r.verdict for r in results), SCENARIO_VERDICTS)
    out.append(
        f"scenarios: {len(results)} cells: "
        + ", ".join(f"{n} {label(v)}" for v, n in totals.items() if n or v in ("pass", "fail"))
    )
    build_totals = count((b.verdict for b in builds.values()), BUILD_VERDICTS)
    out.append(f"builds: {len(builds)} cells: " + ", ".join(f"{n} {v}" for v, n in build_totals.items() if n))
    for cell_id, b in sorted(builds.items()):
        if not b.ok:
            out.append(f"  {str(b.verdict).upper():<11} build {cell_id}: {clean(b.why())[:100]}")
    for r in results:
        if r.verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.NOT_RUN):
            out.append(f"  {label(r.verdict).upper():<11} {r.cell_id}: {clean(first_failure(r))[:100]}")
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
