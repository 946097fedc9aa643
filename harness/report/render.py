"""Render a run folder into what a maintainer reads: dashboard, cell pages, JUnit, JSON, console summary.

Input: a run folder (``reports/<run-id>/``, see :mod:`harness.store.runs`) of stored results only; no
Docker, no QEMU. Output, written into the same folder so it is self-contained (no CDN, no network, no
JavaScript):

    index.html            totals, regressions first (new ones, then cells still red since an earlier
                          night; a bisected one with its first bad commit), the run's bisections, one
                          grid per build row with each cell's trend (verdict strip, pause
                          sparkline, red since), cells needing attention, a pause-time chart, build panels
    cells/<cell>.html     one page per scenario cell: checks, step timeline (source and destination side
                          by side, the pause marked), trend, QMP timeline (polling folded), diffs, logs,
                          reproduce
    builds/<cell>/        build.json plus copies of the build's build.log and reproduce.sh
    bisect/<cell>/        index.html of each bisection (see :mod:`harness.report.bisect_page`)
    junit.xml             see :mod:`harness.report.junit`
    results.json          every scenario result and build record (+ history and trends) for scripts
    summary.json          {scenario cell id: verdict}

Everything taken from logs, argv and QEMU output is escaped by jinja2's autoescape; pages also carry a
Content-Security-Policy forbidding scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from harness.live.files import write_json_atomic, write_text_atomic
from harness.live.result import ScenarioResult
from harness.live.vocab import BUILD_VERDICTS, SCENARIO_VERDICTS, CellId
from harness.report import bisect_page, grid, ram_chart, timeline, views
from harness.report.console import console_summary
from harness.report.history import History, Verdicts, history_for
from harness.report.junit import clean, write_junit
from harness.report.trends import DEFAULT_WINDOW, Trends, trends_for
from harness.store.build_record import BuildRecord
from harness.store.runs import RESULTS_JSON, SUMMARY_FILE, Plan, RunStore

TEMPLATES = Path(__file__).resolve().parent / "templates"


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
    trends: Trends
    console: str
    unremedied: int = 0  # builds that did not pass and whose --remedy auto retry did not pass either

    @property
    def ok(self) -> bool:
        """No scenario failed or errored (unsupported is fine, not run is not), and every build passed or
        was remedied (its retry, reported beside it, passed)."""
        bad = ("fail", "error", "not-run")
        return not any(self.totals.get(v) for v in bad) and not self.unremedied


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        # compiled templates cached per user (jinja2 makes the folder 0700 and checks its owner)
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = lambda v: "" if v is None else f"{float(v):.1f} ms"
    env.filters["secs"] = lambda v: "" if v is None else f"{float(v):.1f} s"
    env.filters["folder"] = lambda cell_id: CellId(str(cell_id)).folder()
    env.filters["timing"] = _timing
    env.globals.update(icons=views.ICONS, labels=views.LABELS)
    return env


def _timing(key: str, value: float) -> str:
    """``pause_ms``, 1.852 -> ``pause 1.852 ms``; ``total_s``, 3.797 -> ``total 3.797 s``."""
    for suffix, unit in (("_ms", "ms"), ("_s", "s")):
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix).replace('_', ' ')} {value:g} {unit}"
    return f"{key} {value:g}"


def _ram_section(results: list[ScenarioResult]) -> dict[str, Any] | None:
    """Pause versus guest RAM, when the run measured some mode at several RAM sizes."""
    series = ram_chart.series_of(results)
    if not series:
        return None
    return {"rows": ram_chart.table_rows(series), "svg": markupsafe.Markup(ram_chart.svg(series))}


def _span(results: list[ScenarioResult], builds: dict[str, BuildRecord]) -> tuple[str, str]:
    starts = [r.started_at for r in results if r.started_at] + [
        b.started_at for b in builds.values() if b.started_at
    ]
    ends = [r.finished_at for r in results if r.finished_at] + [
        b.finished_at for b in builds.values() if b.finished_at
    ]
    return (min(starts) if starts else "", max(ends) if ends else "")


def render_run(
    run_dir: Path,
    *,
    baseline: Path | None = None,
    expected_cells: Iterable[str] = (),
    window: int = DEFAULT_WINDOW,
) -> RenderSummary:
    """Render every output file of the run folder ``run_dir`` and return what was written.

    ``baseline``: a run folder to compare with (default: the previous run beside ``run_dir``).
    ``expected_cells``: scenario cell ids the run was meant to hold, besides those of its ``plan.json``;
    planned cells with no record show ``not run`` (builds too). ``window``: how many runs (this one
    included) the trends cover. Raises ``ConfigError`` for a ``baseline`` that is not a run folder; never
    for a damaged result (that cell becomes ``error``).
    """
    run_dir = Path(run_dir).resolve()
    store = RunStore(run_dir)
    plan = store.read_plan() or Plan()
    results = store.load_scenarios([*plan.scenarios, *expected_cells])
    builds = store.load_builds(plan.builds)
    now = Verdicts.of(results, builds)
    history = history_for(run_dir, now, baseline)
    trends = trends_for(run_dir, now, window)
    totals = views.count((r.verdict for r in results), SCENARIO_VERDICTS)
    build_totals = views.count((b.verdict for b in builds.values()), BUILD_VERDICTS)
    cells = [views.cell_view(r, history, trends) for r in results]
    build_views = [views.build_view(store, k, b, history, trends) for k, b in sorted(builds.items())]
    build_views.sort(key=lambda b: b["verdict"] == "pass")  # stable: failing builds first, then by id
    started, finished = _span(results, builds)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    env = _env()
    page = {"run_id": store.run_id, "generated": generated, "started": started, "finished": finished}
    bisections = bisect_page.bisection_views(run_dir)
    index = run_dir / "index.html"
    write_text_atomic(
        index,
        env.get_template("index.html.j2").render(
            page=page,
            totals=totals,
            build_totals=build_totals,
            history=history,
            still_red=_still_red(trends, history, cells),
            window=[n.date for n in trends.nights],
            grids=grid.grids(cells, results),
            builds=build_views,
            build_index={b["id"]: b for b in build_views},
            chart=grid.chart(cells),
            ram=_ram_section(results),
            views=cells,
            bisections=bisections,
            bisected={b["cell"]: b for b in bisections},
        ),
    )
    pages = []
    by_view = {v["id"]: v for v in cells}
    build_anchor = {b["id"]: b["anchor"] for b in build_views}
    for r in results:
        path = run_dir / by_view[r.cell_id]["href"]
        checks = [{"c": c, "diff": views.diff_lines(c.detail)} for c in r.checks]
        write_text_atomic(
            path,
            env.get_template("cell.html.j2").render(
                page=page,
                r=r,
                v=by_view[r.cell_id],
                trend=views.trend_view(trends.of(r.cell_id), prefix="../"),
                checks=checks,
                steps=timeline.step_timeline(r),
                qmp=timeline.qmp_rows(r),
                logs=views.logs(store, r),
                build_anchor=build_anchor.get(grid.row_of(r.cell_id), ""),
                build_row=grid.row_of(r.cell_id),
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
            "trends": trends.to_json(),
            "scenarios": [r.to_json() for r in results],
            "builds": {k: b.to_json() for k, b in builds.items()},
        },
    )
    summary_json = run_dir / SUMMARY_FILE
    write_json_atomic(summary_json, {r.cell_id: str(r.verdict) for r in results})
    console = console_summary(run_dir, results, builds, history, trends)
    return RenderSummary(
        run_dir,
        index,
        junit,
        results_json,
        summary_json,
        pages,
        totals,
        build_totals,
        history,
        trends,
        console,
        sum(not b.ok and (b.remedy_attempt or {}).get("verdict") != "pass" for b in builds.values()),
    )


def _still_red(trends: Trends, history: History | None, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open regressions that are not new since the baseline: red since an earlier night, passing before."""
    new = {(c.kind, c.cell_id) for c in history.regressions} if history else set()
    by_id = {v["id"]: v for v in cells}
    out = []
    for t in trends.open_regressions():
        if (t.kind, t.cell_id) in new:
            continue
        view = views.trend_view(t)
        href = by_id[t.cell_id]["href"] if t.kind == "scenario" else f"#build-{CellId(t.cell_id).folder()}"
        why = by_id[t.cell_id]["why"] if t.kind == "scenario" else ""
        out.append({"id": t.cell_id, "kind": t.kind, "href": href, "why": why, "trend": view})
    return out
