"""The in-container driver without containers: the spec and fault spec, the guard rails, refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

pytest.importorskip("qemu.qmp")

from harness.live.driver import run_scenario  # noqa: E402
from harness.live.errors import SpecError  # noqa: E402
from harness.live.guards import argv_problems, spec_problems  # noqa: E402
from harness.live.spec import FaultSpec, ScenarioSpec  # noqa: E402


def test_spec_json_round_trip_and_defaults():
    spec = ScenarioSpec.from_json({"cell_id": "t/p/cpr-exec/kvm", "scenario": "cpr-exec", "accel": "kvm"})
    assert spec.guest_ram_mb == 256 and spec.step_timeout_s == 60 and spec.default_devices is False
    assert spec.dst_qemu == "" and not spec.upgrade
    assert ScenarioSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_faults_are_not_part_of_what_a_matrix_can_ask_for():
    faults = FaultSpec()
    assert faults.guard_rails and faults.shared_ram and not faults.kill_source_during_migration
    assert faults.active() == {}
    assert FaultSpec(corrupt_ram=True).active() == {"corrupt_ram": True}
    with pytest.raises(SpecError, match="unknown spec key"):
        ScenarioSpec.from_json({"cell_id": "a/b/c/d", "scenario": "normal", "corrupt_ram": True})
    assert FaultSpec.from_json(FaultSpec(hang_migration=True).to_json()).hang_migration


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cell_id": "a/b/c/d", "scenario": "normal", "bogus": 1}, "unknown spec key(s): bogus"),
        ({"scenario": "normal"}, "missing spec key(s): cell_id"),
        ({"cell_id": "a/b/c/d", "scenario": "postcopy"}, "scenario 'postcopy' is not one of"),
        ({"cell_id": "a/b/c/d", "scenario": "normal", "accel": "hvf"}, "accel 'hvf' is not one of"),
        ({"cell_id": "a/b/c/d", "scenario": "normal", "data_dirs": "x"}, "key 'data_dirs'"),
        ({"cell_id": "a/b/c/d", "scenario": "normal", "step_timeout_s": float("inf")}, "step_timeout_s"),
        ({"cell_id": "a/b/c/d", "scenario": "normal", "guest_ram_mb": True}, "guest_ram_mb"),
    ],
)
def test_spec_rejects_bad_input(raw, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ScenarioSpec.from_json(raw)


@pytest.mark.parametrize("mode", ["cpr-transfer", "cpr-exec"])
def test_guard_rail_refuses_unshared_ram_for_fd_passing_modes(mode):
    spec = ScenarioSpec(cell_id="a/b/c/d", scenario=mode)
    (problem,) = spec_problems(spec, FaultSpec(shared_ram=False))
    assert "shared memory backend" in problem and "zeroed RAM" in problem
    assert spec_problems(spec, FaultSpec(shared_ram=False, guard_rails=False)) == []


@pytest.mark.parametrize("mode", ["boot", "normal", "cpr-reboot"])
def test_unshared_ram_is_fine_for_modes_that_copy_it(mode):
    assert spec_problems(ScenarioSpec(cell_id="a/b/c/d", scenario=mode), FaultSpec(shared_ram=False)) == []


def test_argv_problems_name_the_side():
    (p,) = argv_problems("destination", ["qemu", "-m", "1G", "disk.img"])
    assert p.startswith("destination argv: argument 3 'disk.img' is positional")


def test_refused_spec_gives_error_without_starting_qemu(tmp_path):
    spec = ScenarioSpec(cell_id="t/p/cpr-exec/tcg", scenario="cpr-exec", workdir=str(tmp_path))
    r = run_scenario(spec, FaultSpec(shared_ram=False))
    assert r.verdict == "error"
    assert r.reason.startswith("refused by guard rail: cpr-exec needs guest RAM in a shared memory backend")
    assert not [s for s in r.steps if s.name.startswith("start")]
    assert r.qmp == []


def test_main_writes_an_error_result_for_a_bad_spec(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"cell_id": "t/p/normal/tcg", "scenario": "nope"}))
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.live", str(tmp_path / "spec.json"), str(out)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    r = json.loads(out.read_text())
    assert r["verdict"] == "error" and "scenario 'nope'" in r["reason"] and r["cell_id"] == "t/p/normal/tcg"
