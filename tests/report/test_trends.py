"""Trends across nights, on five stored real runs where one cell goes red on night 3 (tests/data/nightly)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import DATA, run_harness, store_args

from harness.report.history import INFRA, Verdicts, compare, find_previous_run, history_for, load_verdicts
from harness.report.render import RenderSummary, render_run
from harness.report.trends import CellTrend, Mark, trends_for

NIGHTLY = DATA / "nightly"
NIGHTS = sorted(p.name for p in NIGHTLY.iterdir() if p.is_dir())
RED = "upgrade/debian-10.0-to-upstream-10.2/cpr-transfer/tcg"
GREEN = "upstream-10.2/lean/cpr-exec/kvm"


def _strip_marks(html: str, cell: str) -> list[str]:
    """The css classes of the marks of the strip in the grid cell ``cell``."""
    start = html.index(f'data-cell="{cell}"')
    td = html[start : html.index("</td>", start)]
    strip = td[td.index('<span class="strip"') :]
    strip = strip[: strip.index("</span></span>") + len("</span>")]
    return re.findall(r'class="(v-[a-z-]+)"', strip)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    shutil.copytree(NIGHTLY, reports)
    return reports


def _render_all(reports: Path, window: int = 14) -> dict[str, RenderSummary]:
    """Render each night in turn, as five nightly runs would have."""
    return {night: render_run(reports / night, window=window) for night in NIGHTS}


def test_the_red_cell_on_the_night_it_went_red(reports: Path) -> None:
    third = _render_all(reports)[NIGHTS[2]]
    assert third.history is not None and third.history.baseline == NIGHTS[1]
    assert [(c.kind, c.cell_id) for c in third.history.regressions] == [("scenario", RED)]
    trend = third.trends.of(RED)
    assert trend is not None and [m.verdict for m in trend.marks] == ["pass", "pass", "fail"]
    assert trend.red_since is not None and trend.red_since.run_id == NIGHTS[2]
    html = third.index.read_text()
    assert 'id="regressions"' in html and 'id="still-red"' not in html  # new, so not "still" red


def test_five_nights_strip_first_red_date_and_regression(reports: Path) -> None:
    last = _render_all(reports)[NIGHTS[-1]]
    trend = last.trends.of(RED)
    assert trend is not None
    assert [m.run_id for m in trend.marks] == NIGHTS
    assert [m.verdict for m in trend.marks] == ["pass", "pass", "fail", "fail", "fail"]
    assert trend.red_since is not None and (trend.red_since.run_id, trend.red_since.date) == (
        "20261204T020000Z",
        "2026-12-04",
    )
    assert trend.before_red is not None and trend.before_red.date == "2026-12-03" and trend.regression
    # compared with night 4 alone nothing changed; the trend still calls it a regression, and since when
    assert last.history is not None and last.history.regressions == []
    assert [t.cell_id for t in last.trends.open_regressions()] == [RED]

    html = last.index.read_text()
    assert _strip_marks(html, RED) == ["v-pass", "v-pass", "v-fail", "v-fail", "v-fail"]
    assert _strip_marks(html, GREEN) == ["v-pass"] * 5
    box = html[html.index('id="still-red"') :]
    box = box[: box.index("</div>")]
    assert RED in box and "red since 2026-12-04" in box and "pass on 2026-12-03" in box
    assert "sriov-pf" in box  # the first failed check, as in the regression box
    cell = html[html.index(f'data-cell="{RED}"') :]
    assert "red since 2026-12-04" in cell[: cell.index("</td>")]

    assert any(
        line.startswith("  STILL RED   scenario " + RED) and "since 2026-12-04" in line
        for line in last.console.splitlines()
    )
    data = json.loads(last.results_json.read_text())
    red = next(c for c in data["trends"]["cells"] if c["cell_id"] == RED)
    assert red["red_since"] == "20261204T020000Z" and red["regression"] is True
    assert data["trends"]["window"] == NIGHTS


def test_cell_page_trend_links_every_night(reports: Path) -> None:
    last = _render_all(reports)[NIGHTS[-1]]
    page = (
        last.run_dir / "cells" / "upgrade__debian-10.0-to-upstream-10.2__cpr-transfer__tcg.html"
    ).read_text()
    trend = page[page.index('id="trend"') :]
    trend = trend[: trend.index("</p>")]
    hrefs = re.findall(r'href="([^"]+)"', trend)
    assert len(hrefs) == 5
    for href in hrefs:  # each night's own page of this cell, from this page's folder
        assert (last.run_dir / "cells" / href).resolve().is_file(), href
    assert "red since 2026-12-04" in page and "pass on 2026-12-03" in page


def test_pause_sparkline_over_the_nights(reports: Path) -> None:
    last = _render_all(reports)[NIGHTS[-1]]
    trend = last.trends.of(GREEN)
    assert trend is not None and len(trend.pauses) == 5
    html = last.index.read_text()
    cell = html[html.index(f'data-cell="{GREEN}"') :]
    cell = cell[: cell.index("</td>")]
    spark = cell[cell.index('<svg class="spark"') :]
    assert spark.count("<circle") == 5 and spark.count("<polyline") == 1
    lo, hi = min(trend.pauses), max(trend.pauses)
    assert f"pause {lo:.1f} ms to {hi:.1f} ms over 5 run(s)" in spark


def test_window_bounds_what_is_read(reports: Path) -> None:
    last = render_run(reports / NIGHTS[-1], window=3)
    trend = last.trends.of(RED)
    assert trend is not None and [m.run_id for m in trend.marks] == NIGHTS[-3:]
    assert trend.red_before_window and not trend.regression  # red in every night it can see
    html = last.index.read_text()
    assert 'id="still-red"' not in html and "red since 2026-12-04 or earlier" in html
    single = render_run(reports / NIGHTS[-1], window=1)
    assert all(len(t.marks) == 1 for t in single.trends.cells.values())
    assert '<span class="strip"' not in single.index.read_text().split('id="grid"')[1].split("</table>")[0]


def _trend(*verdicts: str | None) -> CellTrend:
    marks = [Mark(f"2026120{i}T020000Z", f"2026-12-0{i}", v, None, "") for i, v in enumerate(verdicts, 1)]
    return CellTrend("t/p/normal/tcg", "scenario", marks)


def test_red_streak_rules() -> None:
    t = _trend("pass", "fail", None, INFRA, "not-run", "error")
    assert t.red_since is not None and t.red_since.run_id.startswith("20261202") and t.regression
    t = _trend("pass", "fail", "unsupported", "fail")  # unsupported ends a streak: red since night 4
    assert t.red_since is not None and t.red_since.date == "2026-12-04" and not t.regression
    assert t.before_red is not None and t.before_red.verdict == "unsupported"
    t = _trend("fail", "pass", INFRA)
    assert t.red_since is None and not t.regression  # an engine error is not red
    t = _trend("fail", INFRA, "fail")
    assert t.red_before_window and not t.regression  # red at the window's start: since then or earlier
    t = _trend(None, "fail")
    assert not t.red_before_window and not t.regression  # new in the window, red from its first run


def test_trends_of_builds(reports: Path) -> None:
    now = load_verdicts(reports / NIGHTS[-1])
    trends = trends_for(reports / NIGHTS[-1], now, 14)
    build = trends.of("upstream-10.2/lean", "build")
    assert build is not None and [m.verdict for m in build.marks] == ["pass"] * 5


def _build_only_run(reports: Path, run_id: str) -> Path:
    run = reports / run_id
    shutil.copytree(reports / NIGHTS[-1] / "builds", run / "builds")
    return run


def test_a_build_run_lists_no_scenario_cell_as_removed(reports: Path) -> None:
    run = _build_only_run(reports, "20261207T020000Z")
    summary = render_run(run)
    assert summary.history is not None and summary.history.baseline == NIGHTS[-1]
    assert [c for c in summary.history.removed if c.kind == "scenario"] == []
    assert summary.history.unchanged == ["debian-10.0/prebuilt", "upstream-10.2/lean"]  # builds compared
    assert "removed" not in summary.console
    # the next test run compares with the last night that ran scenarios, not with the build run
    later = reports / "20261208T020000Z"
    shutil.copytree(reports / NIGHTS[-1], later)
    found = find_previous_run(later, with_scenarios=True)
    assert found is not None and found.name == NIGHTS[-1]
    history = history_for(later, load_verdicts(later))
    assert history is not None and history.baseline == NIGHTS[-1] and history.new == []


def test_compare_skips_scenarios_of_a_run_without_any() -> None:
    before = Verdicts({"t/p/normal/tcg": "pass"}, {"t/p": "pass"})
    history = compare(Verdicts({}, {"t/p": "fail"}), before, Path("/r/base"))
    assert history.removed == [] and [c.cell_id for c in history.regressions] == ["t/p"]


@pytest.mark.docker
def test_real_build_run_after_test_nights(reports: Path, cache_dir: Path) -> None:
    """``python -m harness build`` beside stored test runs: no scenario cell is called removed."""
    done = run_harness(
        "build",
        "--matrix",
        "matrices/smoke.yaml",
        "--cells",
        "debian-11.1/prebuilt",
        *store_args(cache_dir, reports, "20261207T020000Z"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"since {NIGHTS[-1]}: 0 regression(s)" in done.stdout
    removed = [line for line in done.stdout.splitlines() if line.startswith("removed:")]
    assert all("/tcg" not in line for line in removed), removed  # builds only: no scenario cell
    data = json.loads((reports / "20261207T020000Z" / "results.json").read_text())
    assert all(c["kind"] == "build" for c in data["history"]["removed"])
    assert data["history"]["new"] == [
        {"cell_id": "debian-11.1/prebuilt", "kind": "build", "before": None, "after": "pass"}
    ]


def test_history_option_of_the_cli(reports: Path) -> None:
    done = run_harness("report", "--reports", str(reports), "--run", NIGHTS[-1], "--history", "3")
    assert done.returncode == 1, done.stdout + done.stderr  # one cell is red
    assert json.loads((reports / NIGHTS[-1] / "results.json").read_text())["trends"]["window"] == NIGHTS[-3:]
    bad = run_harness("report", "--reports", str(reports), "--history", "0")
    assert bad.returncode == 2 and "--history: '0' is not a number of runs" in bad.stderr
    assert "Traceback" not in bad.stderr
