"""History: the previous run is found beside the current one and verdict changes are classified."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import DATA

from harness.errors import ConfigError
from harness.report.history import Verdicts, compare, find_previous_run, history_for, load_verdicts

RUNS = DATA / "runs"
PREVIOUS, CURRENT = "20261125T020000Z", "20261126T020000Z"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    shutil.copytree(RUNS, reports)
    return reports


def test_previous_run_is_the_sibling_just_before(reports: Path) -> None:
    (reports / "20261124T020000Z" / "results").mkdir(parents=True)
    (reports / "20261127T020000Z" / "results").mkdir(parents=True)  # later: never a baseline
    (reports / "20261125T120000Z-notarun").mkdir()  # no results: skipped
    os.symlink(CURRENT, reports / "latest")
    assert find_previous_run(reports / CURRENT).name == PREVIOUS
    assert find_previous_run(reports / "latest").name == PREVIOUS  # resolved through the symlink
    assert find_previous_run(reports / "20261124T020000Z") is None


def test_stored_runs_classified(reports: Path) -> None:
    history = history_for(reports / CURRENT, load_verdicts(reports / CURRENT))
    assert history is not None and history.baseline == PREVIOUS
    regressions = {(c.kind, c.cell_id) for c in history.regressions}
    assert ("scenario", "upstream-10.2/lean/cpr-transfer/tcg") in regressions
    assert ("scenario", "debian-10.0/prebuilt/cpr-transfer/tcg") in regressions  # pass -> truncated (error)
    assert ("build", "broken-git/lean") in regressions
    assert ("scenario", "upstream-10.2/lean/cpr-exec/tcg") in {(c.kind, c.cell_id) for c in history.fixes}
    assert "broken-git/lean/boot/tcg" in {c.cell_id for c in history.new}
    assert "old-tree/lean/boot/tcg" in {c.cell_id for c in history.removed}
    assert "debian-10.0/prebuilt/cpr-exec/tcg" in history.unchanged  # unsupported both nights
    status = history.status("upstream-10.2/lean/cpr-transfer/tcg")
    assert status is not None and status[0] == "regression" and status[1].before == "pass"
    assert history.status("upstream-10.2/lean/normal/tcg") is None
    assert json.dumps(history.to_json())


def test_transitions() -> None:
    before = Verdicts(
        {"a": "pass", "b": "fail", "c": "unsupported", "d": "pass", "e": "error", "f": "pass", "g": "pass"},
        {"t/p": "fail"},
    )
    now = Verdicts(
        {
            "a": "error",
            "b": "pass",
            "c": "fail",
            "d": "unsupported",
            "e": "fail",
            "f": "not-run",
            "h": "pass",
        },
        {"t/p": "pass"},
    )
    h = compare(now, before, Path("/reports/base"))
    assert [c.cell_id for c in h.regressions] == ["a"]
    assert [(c.kind, c.cell_id) for c in h.fixes] == [("scenario", "b"), ("build", "t/p")]
    assert {c.cell_id for c in h.changed} == {"c", "d", "e", "f"}  # noteworthy, but not a regression
    assert [c.cell_id for c in h.new] == ["h"] and [c.cell_id for c in h.removed] == ["g"]
    assert h.baseline == "base"


def test_load_verdicts_sources(reports: Path) -> None:
    run = reports / PREVIOUS
    from_store = load_verdicts(run)
    assert from_store.scenarios["upstream-10.2/lean/cpr-transfer/tcg"] == "pass"
    assert from_store.builds["broken-git/lean"] == "pass"
    (run / "results.json").write_text(
        json.dumps({"scenarios": [{"cell_id": "x/y/boot/tcg", "verdict": "fail"}], "builds": {}})
    )
    assert load_verdicts(run).scenarios == {"x/y/boot/tcg": "fail"}
    (run / "results.json").write_text("{trunc")  # corrupt: falls back to summary.json
    assert load_verdicts(run).scenarios == from_store.scenarios


def test_explicit_baseline(reports: Path, tmp_path: Path) -> None:
    now = load_verdicts(reports / PREVIOUS)
    history = history_for(reports / PREVIOUS, now, baseline=reports / CURRENT)  # any direction
    assert history is not None and history.baseline == CURRENT
    with pytest.raises(ConfigError):
        history_for(reports / CURRENT, now, baseline=tmp_path)


def test_infrastructure_errors_are_not_regressions(tmp_path: Path) -> None:
    from harness.live.result import ScenarioResult
    from harness.report.history import INFRA, compare, compared
    from harness.store.build_record import BuildRecord

    assert compared("error", infra=True) == INFRA and compared("fail", infra=True) == "fail"
    engine_down = ScenarioResult.error("t/p/normal/tcg", "Docker engine error while running ...", infra=True)
    bug = ScenarioResult.error("t/p/boot/tcg", "harness error: boom")
    build = BuildRecord.from_json({"cell": "t/p", "verdict": "error", "stage": "infra"})
    now_of = Verdicts.of([engine_down, bug], {"t/p": build})
    assert now_of.scenarios == {"t/p/normal/tcg": INFRA, "t/p/boot/tcg": "error"} and now_of.builds == {
        "t/p": INFRA
    }
    before = Verdicts({"t/p/normal/tcg": "pass"}, {"t/p": "pass"})
    now = Verdicts({"t/p/normal/tcg": INFRA}, {"t/p": INFRA})
    history = compare(now, before, tmp_path)
    assert history.regressions == [] and len(history.changed) == 2


def test_pause_regression_needs_repeated_samples_on_both_runs(tmp_path: Path) -> None:
    """Five repetitions a night: +50 % is flagged apart from verdict regressions; +5 % and one sample
    a side are not."""
    from harness.live.result import ScenarioResult
    from harness.report.render import render_run
    from harness.store.runs import RunStore

    def night(run: str, pauses: dict[str, list[float]]) -> Path:
        store = RunStore(tmp_path / run)
        for mode, values in pauses.items():
            r = ScenarioResult(
                f"t/p/{mode}/tcg", mode, "tcg", verdict="pass", timings={"pause_ms": values[0]}
            )
            if len(values) > 1:
                r.samples = [
                    {"pause_ms": v, "repetition": i + 1, "passed": 1.0} for i, v in enumerate(values)
                ]
            store.save_scenario(r)
        return store.root

    before = {"normal": [10.0, 10.2, 9.9, 10.1, 10.0], "cpr-exec": [50, 51, 49, 50, 52], "cpr-reboot": [40]}
    after = {
        "normal": [15.0, 15.3, 14.9, 15.2, 15.1],
        "cpr-exec": [52, 53, 51, 52, 54],
        "cpr-reboot": [400.0],
    }
    night("20261101T020000Z", before)
    now = night("20261102T020000Z", after)
    summary = render_run(now)
    assert summary.history is not None and summary.history.regressions == []  # verdicts did not change
    assert [p.cell_id for p in summary.history.pause_regressions] == ["t/p/normal/tcg"]
    assert "PAUSE REGRESSION  t/p/normal/tcg: median 10.0 -> 15.1 ms (+51 %)" in summary.console
    assert 'id="pause-regressions"' in (now / "index.html").read_text()
