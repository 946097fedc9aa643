"""The plan of a run (plan.json): written before any work, kept when the report is rendered again, and a
run id given twice never mixes two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samples import full_result

from harness.live.vocab import Verdict
from harness.report.render import render_run
from harness.store.build_record import BuildRecord
from harness.store.runs import Plan, RunStore

BUILDS = ["t/p"]
SCENARIOS = ["t/p/boot/tcg", "t/p/normal/tcg", "t/p/cpr-exec/tcg"]


def test_plan_round_trip_and_bad_ids() -> None:
    plan = Plan(builds=BUILDS, scenarios=SCENARIOS, commands=["test"], matrix="m.yaml", started_at="x")
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    with pytest.raises(ValueError):
        Plan.from_json({"scenarios": ["../../etc"]})
    with pytest.raises(ValueError):
        Plan.from_json(["not", "an", "object"])


def test_a_rerendered_report_keeps_the_cells_that_never_ran(tmp_path: Path) -> None:
    """An interrupted `test`: one cell finished. Rendering again later still shows the other two (and the
    build that never started) as not run, and the report is not ok."""
    store, _ = RunStore.open(tmp_path, "r1", Plan(builds=["t/p", "u/p"], scenarios=SCENARIOS))
    store.save_scenario(full_result("t/p/boot/tcg", Verdict.PASS))
    store.save_build(BuildRecord.from_json({"cell": "t/p", "verdict": "pass"}))
    summary = render_run(store.root)  # no expected cells passed: they come from plan.json
    assert json.loads(summary.summary_json.read_text()) == {
        "t/p/boot/tcg": "pass", "t/p/cpr-exec/tcg": "not-run", "t/p/normal/tcg": "not-run",
    }  # fmt: skip
    assert summary.build_totals["not-run"] == 1 and not summary.ok
    results = json.loads(summary.results_json.read_text())
    assert results["builds"]["u/p"]["verdict"] == "not-run"


def test_build_then_test_continue_one_run_folder(tmp_path: Path) -> None:
    build, note = RunStore.open(tmp_path, "nox-run", Plan(builds=BUILDS, commands=["build"]))
    assert note == "" and build.run_id == "nox-run"
    test, note = RunStore.open(
        tmp_path, "nox-run", Plan(builds=BUILDS, scenarios=SCENARIOS, commands=["test"])
    )
    assert note == "" and test.root == build.root
    plan = test.read_plan()
    assert plan is not None and plan.commands == ["build", "test"] and plan.scenarios == SCENARIOS


def test_a_reused_run_id_keeps_the_earlier_run_apart(tmp_path: Path) -> None:
    first, _ = RunStore.open(tmp_path, "nightly", Plan(builds=BUILDS, scenarios=SCENARIOS[:1]))
    first.save_scenario(full_result("t/p/boot/tcg", Verdict.FAIL))
    second, note = RunStore.open(tmp_path, "nightly", Plan(builds=BUILDS, scenarios=SCENARIOS[1:]))
    assert second.run_id == "nightly-2" and "kept as it is" in note and "nightly-2" in note
    assert first.read_plan() == Plan(builds=BUILDS, scenarios=SCENARIOS[:1])  # untouched
    assert [r.cell_id for r in first.load_scenarios()] == ["t/p/boot/tcg"]
    assert second.load_scenarios() == []  # the earlier failure does not leak into the new run


def test_a_folder_without_a_plan_but_with_results_is_kept_apart(tmp_path: Path) -> None:
    old = RunStore(tmp_path / "old-release")
    old.save_scenario(full_result("t/p/boot/tcg", Verdict.PASS))
    store, note = RunStore.open(tmp_path, "old-release", Plan(scenarios=SCENARIOS))
    assert store.run_id == "old-release-2" and note
