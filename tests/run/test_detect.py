"""harness.run.detect: the table logic (pure), and a short real campaign on QEMU 11.1 in containers."""

from __future__ import annotations

import pytest
from conftest import REPO, image_tag, run_harness

from harness.run import detect
from harness.run.detect import FAULTS, MODES, Fault, Job, Outcome, judge


def _fault(key: str) -> Fault:
    return next(f for f in FAULTS if f.key == key)


def _out(fault: str, mode: str, verdict: str, reason: str = "", failed: list[str] | None = None) -> Outcome:
    return Outcome(fault, mode, verdict, reason, failed or [])


# ---- pure ----
def test_fault_catalogue_is_consistent():
    keys = [f.key for f in FAULTS]
    assert len(keys) == len(set(keys))
    assert {
        "a",
        "b",
        "c",
        "d1",
        "d2",
        "e1",
        "e2",
        "f",
        "g",
        "bug1",
        "bug2",
        "h1",
        "h2",
        "i",
        "j1",
        "j2",
    } == set(keys)
    for f in FAULTS:
        assert f.modes and set(f.modes) <= set(MODES), f.key
        assert f.spec, f.key
        assert f.machine in ("minimal", "virtio", "ovmf"), f.key
    expected = {"h1": "disk-integrity", "h2": "disk-integrity", "i": "net-continuity", "j1": "device-memory"}
    assert {k: _fault(k).expect for k in expected} == expected and _fault("j2").machine == "ovmf"
    assert _fault("j1").modes == ("cpr-transfer", "cpr-exec")  # where the new QEMU must not reload ROMs
    assert _fault("e1").modes == ("cpr-reboot",) and _fault("d2").modes == MODES
    assert "cpr-exec" not in _fault("d1").modes  # the old QEMU *is* the new one after the exec


def test_fault_specs_are_valid_scenario_specs():
    pytest.importorskip("qemu.qmp")
    from harness.live.spec import FaultSpec, ScenarioSpec

    for job in detect.plan(FAULTS, MODES, clean_runs=1):
        spec, faults, mounts = detect.spec_for(job, "tcg")
        assert mounts == []
        assert ScenarioSpec.from_json(spec.to_json()) == spec and spec.scenario == job.mode
        assert (faults is None) == (job.fault is None)
        if faults is not None:
            assert FaultSpec.from_json(faults.to_json()) == faults and faults.active()
    clean, no_faults, _ = detect.spec_for(Job(None, "normal", 3), "tcg")
    assert no_faults is None and clean.cell_id == "detect/clean/normal/3/tcg"
    assert detect.plan(FAULTS, MODES, 0) == [
        j for j in detect.plan(FAULTS, MODES, 0) if j.machine_name == "minimal"
    ]


def test_linux_machines_get_the_guest_and_its_own_cell_ids(tmp_path):
    from harness.build.guest import GuestBundle
    from harness.config.matrix import load_matrix
    from harness.config.schema import BUILTIN_MACHINES
    from harness.live.spec import ScenarioSpec

    guest = GuestBundle(tmp_path, {"kernel": "6.12"})
    profiles = dict(BUILTIN_MACHINES) | load_matrix(REPO / "matrices" / "devices.yaml").machines
    machines = detect.Machines(profiles, guest)
    jobs = detect.plan(FAULTS, MODES, clean_runs=1, machines=["minimal", "virtio"])
    assert "h1/virtio/normal" in [j.name for j in jobs] and "clean/virtio/cpr-exec/1" in [
        j.name for j in jobs
    ]
    assert not [j for j in jobs if j.fault and j.fault.key == "j2"]  # ovmf not chosen
    spec, faults, mounts = detect.spec_for(Job(_fault("h1"), "cpr-exec"), "tcg", machines=machines)
    assert spec.cell_id == "detect/h1/virtio/cpr-exec/tcg" and faults is not None and faults.modify_disk
    assert spec.machine_spec.linux and spec.machine_spec.devices == profiles["virtio"].devices
    assert spec.machine["kernel"] == "/guest/vmlinuz" and mounts[0].source == tmp_path and mounts[0].read_only
    assert spec.observe_s == 2.0 and ScenarioSpec.from_json(spec.to_json()) == spec


def test_detectors_read_timeout_and_abort_from_the_reason():
    hang = _out(
        "g", "normal", "fail", "timeout in step 'wait for MIGRATION completed' (source, …)", ["runstates"]
    )
    assert hang.detectors() == ["timeout", "runstates"]
    abort = _out("bug1", "cpr-transfer", "fail", "source QEMU exited (-6, SIGABRT) while executing migrate")
    assert abort.detectors() == ["qemu-abort"]
    assert _out("a", "normal", "pass", "9 checks passed").detectors() == []


@pytest.mark.parametrize(
    ("outcome", "status", "text"),
    [
        (_out("a", "normal", "fail", "device-tree: …", ["device-tree"]), "caught", "caught: **device-tree**"),
        (_out("a", "normal", "fail", "", ["runstates", "device-tree"]), "caught", "(+runstates)"),
        (_out("a", "normal", "fail", "", ["runstates"]), "caught-other", "WRONG CHECK: runstates"),
        (_out("a", "normal", "pass", "9 checks passed"), "MISSED", "MISSED"),
        (_out("a", "normal", "error", "harness error: boom"), "error", "ERROR: harness error: boom"),
    ],
)
def test_judge_and_cell_text(outcome, status, text):
    assert judge(_fault("a"), outcome) == status
    assert text in detect.cell_text(_fault("a"), outcome)


def test_tables_and_problems():
    faults = [_fault("a"), _fault("e1")]
    outcomes = [
        _out("a", "normal", "fail", "", ["device-tree"]),
        _out("a", "cpr-exec", "pass"),
        _out("e1", "cpr-reboot", "fail", "", ["state-file-size"]),
        *[_out("clean", "normal", "pass") for _ in range(3)],
        _out("clean", "cpr-exec", "fail", "counter-serial: line 9: N=5 after N=3", ["counter-serial"]),
    ]
    table = detect.fault_table(faults, outcomes).splitlines()
    assert table[0] == "| class | boot | normal | cpr-reboot | cpr-transfer | cpr-exec |"
    assert table[2].startswith("| a: destination grows an extra device")
    assert table[2].split(" | ")[1:] == ["–", "caught: **device-tree**", "–", "–", "MISSED |"]
    assert "caught: **state-file-size**" in table[3]
    clean = detect.clean_table(outcomes)
    assert "| minimal | normal | 3 | 3 | 0 | – |" in clean
    assert "| minimal | cpr-exec | 1 | 0 | 1 | fail: counter-serial: line 9" in clean
    found = detect.problems(faults, outcomes)
    assert found == [
        "a on cpr-exec: MISSED",
        "false alarm: clean minimal/cpr-exec #0: fail: counter-serial: line 9: N=5 after N=3",
    ]
    linux = [Outcome("clean", "normal", "pass", "", [], 1, machine="virtio")]
    assert "| virtio | normal | 1 | 1 | 0 | – |" in detect.clean_table(linux)
    assert "[virtio]" in detect.fault_table(
        [_fault("h1")], [_out("h1", "normal", "fail", "", ["disk-integrity"])]
    )
    text = detect.report(faults, outcomes, "img:tag", "tcg")
    assert "False alarms: 1 in 4 clean runs. 2 problem(s):" in text


def test_plan_and_campaign_order():
    jobs = detect.plan([_fault("d1"), _fault("e2")], ["normal", "cpr-reboot"], clean_runs=2)
    assert [j.name for j in jobs] == [
        "d1/normal", "d1/cpr-reboot", "e2/cpr-reboot",
        "clean/normal/1", "clean/cpr-reboot/1", "clean/normal/2", "clean/cpr-reboot/2",
    ]  # fmt: skip
    lines: list[str] = []
    outs = detect.run_campaign(
        jobs, lambda j: _out(j.fault.key if j.fault else "clean", j.mode, "pass"), 2, lines.append
    )
    assert [(o.fault, o.mode) for o in outs] == [(j.fault.key if j.fault else "clean", j.mode) for j in jobs]
    assert len(lines) == len(jobs) and lines[-1].startswith(f"[{len(jobs)}/{len(jobs)}]")


def test_g_fault_uses_a_short_step_timeout():
    assert detect.spec_for(Job(_fault("g"), "normal"), "tcg")[0].step_timeout_s < 20
    assert detect.spec_for(Job(None, "normal", 1), "tcg")[0].step_timeout_s == 60


def test_arguments_reject_unknown_faults_and_modes():
    for args in (["--faults", "a,zz"], ["--modes", "postcopy"], ["--clean-runs", "-1"]):
        done = run_harness("detect", *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "unknown zz" in run_harness("detect", "--faults", "a,zz").stderr


# ---- real QEMU 11.1 in containers ----
@pytest.mark.docker
@pytest.mark.qemu
def test_short_real_campaign_catches_seeded_bugs_without_false_alarms(tmp_path):
    from harness.engine.containers import Engine, ImageRef

    tag = image_tag("qemu-trixie-backports")
    engine = Engine.connect(progress=lambda line: None)
    image = ImageRef(tag, tag, "")
    picks = [
        ("a", "normal"),
        ("c", "cpr-transfer"),
        ("d2", "boot"),
        ("g", "cpr-reboot"),
        ("bug1", "cpr-transfer"),
    ]
    jobs = [Job(_fault(k), m) for k, m in picks] + detect.plan([], MODES, clean_runs=2)
    outcomes = detect.run_campaign(
        jobs, lambda j: detect.run_job(engine, image, j, "tcg", tmp_path, kvm=False), 2, lambda line: None
    )
    assert detect.problems(FAULTS, outcomes) == []
    by = {(o.fault, o.mode): o for o in outcomes}
    assert by[("a", "normal")].detectors() == ["device-tree"]  # the destination ran, with the stray disk
    assert by[("g", "cpr-reboot")].reason.startswith("timeout in step 'wait for MIGRATION completed'")
    assert "assertion failed: (channel)" in by[("bug1", "cpr-transfer")].reason
    assert (tmp_path / "detect__a__normal__tcg" / "result.json").is_file()
    assert engine.list_own() == []


def test_guard_rail_refuses_the_uri_only_cpr_transfer_unless_switched_off():
    pytest.importorskip("qemu.qmp")
    from harness.live.guards import spec_problems
    from harness.live.spec import FaultSpec, ScenarioSpec

    spec = ScenarioSpec(cell_id="a/b/cpr-transfer/tcg", scenario="cpr-transfer")
    (problem,) = spec_problems(spec, FaultSpec(cpr_transfer_uri_only=True))
    assert "needs `migrate` with channels" in problem and "aborts" in problem
    assert spec_problems(spec, FaultSpec(cpr_transfer_uri_only=True, guard_rails=False)) == []
