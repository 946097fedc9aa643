"""Merging CI shards (harness.report.merge): shards are data (no link is followed), and a shard that
never arrived shows its planned cells as not run."""

from __future__ import annotations

import json
from pathlib import Path

from samples import full_result

from harness.live.vocab import Verdict
from harness.report.merge import merge_runs
from harness.report.render import render_run
from harness.store.runs import Plan, RunStore


def _shard(root: Path, cells: list[str], plan: list[str] | None = None) -> RunStore:
    store = RunStore(root)
    store.root.mkdir(parents=True)
    if plan is not None:
        store.write_plan(Plan(scenarios=plan))
    for cell in cells:
        store.save_scenario(full_result(cell, Verdict.PASS))
    return store


def test_links_in_a_shard_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host secret\n")
    shard = _shard(tmp_path / "shard", ["t/p/boot/tcg"])
    cell = shard.cell_dir("t/p/boot/tcg")
    (cell / "serial.log").symlink_to(secret)
    (shard.results_dir / "t__p__normal__tcg").symlink_to(cell)  # a cell folder that is a link
    merged = merge_runs([shard.root], tmp_path / "merged")
    out = tmp_path / "merged" / "results"
    assert sorted(p.name for p in out.iterdir()) == ["t__p__boot__tcg"]
    assert not (out / "t__p__boot__tcg" / "serial.log").exists()
    assert any("serial.log: a symlink" in n for n in merged.notes)
    assert any("t__p__normal__tcg: a symlink or not a folder" in n for n in merged.notes)


def test_a_shard_that_never_arrived_shows_as_not_run(tmp_path: Path) -> None:
    arrived = _shard(tmp_path / "a", ["t/p/boot/tcg"], plan=["t/p/boot/tcg"])
    expected = Plan(builds=["t/p", "u/p"], scenarios=["t/p/boot/tcg", "u/p/boot/tcg", "u/p/normal/tcg"])
    merged = merge_runs([arrived.root], tmp_path / "merged", expected)
    assert any("2 planned scenario cell(s) in no shard" in n for n in merged.notes)
    summary = render_run(tmp_path / "merged")
    assert json.loads(summary.summary_json.read_text()) == {
        "t/p/boot/tcg": "pass", "u/p/boot/tcg": "not-run", "u/p/normal/tcg": "not-run",
    }  # fmt: skip
    assert not summary.ok  # the exit code of `report --merge` says so too


def test_a_partial_shard_keeps_its_own_plan(tmp_path: Path) -> None:
    """A shard interrupted after one of its two cells: its plan.json names the other one."""
    shard = _shard(tmp_path / "s", ["t/p/boot/tcg"], plan=["t/p/boot/tcg", "t/p/normal/tcg"])
    merge_runs([shard.root], tmp_path / "merged")
    summary = json.loads(render_run(tmp_path / "merged").summary_json.read_text())
    assert summary == {"t/p/boot/tcg": "pass", "t/p/normal/tcg": "not-run"}
