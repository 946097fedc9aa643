"""A KVM cell that ran under TCG says so wherever its verdict is shown (console line, table, grid)."""

from __future__ import annotations

from pathlib import Path

from harness.live.result import ScenarioResult
from harness.report.console import cell_line, cells_table
from harness.report.render import render_run
from harness.store.runs import RunStore


def _kvm_cell(accel_used: str) -> ScenarioResult:
    return ScenarioResult("t/p/normal/kvm", "normal", "kvm", accel_used=accel_used, verdict="pass")


def test_a_kvm_cell_that_fell_back_to_tcg_is_marked() -> None:
    assert cell_line(_kvm_cell("tcg"), 1, 1).startswith("[1/1] PASS (tcg)  t/p/normal/kvm")
    assert "pass (tcg)" in cells_table([_kvm_cell("tcg")], 1.0, "r")[2]
    assert "(tcg)" not in cell_line(_kvm_cell("kvm"), 1, 1)
    assert "(tcg)" not in cells_table([_kvm_cell("kvm")], 1.0, "r")[2]


def test_the_grid_marks_the_fallback(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.save_scenario(_kvm_cell("tcg"))
    summary = render_run(store.root)
    assert "ran on tcg" in summary.index.read_text()
