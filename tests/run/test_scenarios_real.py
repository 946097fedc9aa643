"""Every mode run for real by the in-container driver, in containers of the run images, the way the
runner mounts it (only ``harness/live``), with a process scan after the driver in the same container.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, image_tag

from harness.live.kvm import kvm_problem
from harness.live.spec import FaultSpec

MODES = ["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"]
PS_MARK = "::processes-after-the-driver::"
FAULT_KEYS = set(FaultSpec().to_json())


def _have_image(image: str) -> bool:
    if not shutil.which("docker"):
        return False
    probe = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return probe.returncode == 0


def run_in_container(image: str, tmp_path: Path, spec: dict, *, kvm: bool = False) -> tuple[dict, list[str]]:
    """Run one scenario as the runner does (fault keys of ``spec`` go to faults.json); returns (result
    JSON, qemu/zombie processes left in the container after the driver)."""
    if not _have_image(image):
        pytest.skip(f"no Docker engine or no image {image}")
    faults = {k: v for k, v in spec.items() if k in FAULT_KEYS}
    spec = {k: v for k, v in spec.items() if k not in FAULT_KEYS}
    (tmp_path / "spec.json").write_text(json.dumps({"workdir": "/work", **spec}))
    driver = "python3 -m harness.live /work/spec.json /work/result.json"
    if faults:
        (tmp_path / "faults.json").write_text(json.dumps(faults))
        driver += " /work/faults.json"
    script = f"{driver}; echo {PS_MARK}; ps -eo pid=,stat=,comm="
    argv = ["docker", "run", "--rm", "--init", "--shm-size", "1g", "--network", "none",
            "-v", f"{REPO}/harness/live:/opt/cpr-harness/harness/live:ro", "-v", f"{tmp_path}:/work",
            "-e", "PYTHONPATH=/opt/cpr-harness", "-e", "PYTHONDONTWRITEBYTECODE=1"]  # fmt: skip
    if kvm:
        argv += ["--device", "/dev/kvm"]
    proc = subprocess.run([*argv, image, "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert PS_MARK in proc.stdout, proc.stdout + proc.stderr
    after = proc.stdout.split(PS_MARK, 1)[1].split("\n")
    leftovers = [
        ln.strip() for ln in after if "qemu" in ln or (ln.split()[1:2] and ln.split()[1].startswith("Z"))
    ]
    result = json.loads((tmp_path / "result.json").read_text())
    return result, leftovers


def _failed(result: dict) -> str:
    bad = [f"{c['name']}: {c['observed']}" for c in result["checks"] if c["verdict"] == "fail"]
    return f"{result['verdict']}: {result['reason']} {bad}"


def _accel_params():
    return [
        pytest.param("tcg", id="tcg"),
        pytest.param(
            "kvm", id="kvm", marks=pytest.mark.skipif(bool(kvm_problem()), reason="/dev/kvm unusable")
        ),
    ]


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize("accel", _accel_params())
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_passes_on_qemu_11_1(tmp_path, mode, accel):
    result, leftovers = run_in_container(
        image_tag("qemu-trixie-backports"),
        tmp_path,
        {"cell_id": f"dev/11.1/{mode}/{accel}", "scenario": mode, "accel": accel},
        kvm=accel == "kvm",
    )  # fmt: skip
    assert result["verdict"] == "pass", _failed(result)
    assert result["accel_used"] == accel
    assert result["qemu_version"]["source"].startswith("11.1")
    assert all(c["verdict"] in ("pass", "skip") for c in result["checks"])
    assert leftovers == []
    for name in result["logs"].values():
        assert (tmp_path / name).is_file(), name
    if mode != "boot":
        assert result["timings"]["pause_ms"] < 2000


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize("mode", MODES[1:])
def test_qemu_10_0_has_all_modes_but_cpr_exec(tmp_path, mode):
    result, leftovers = run_in_container(
        image_tag("qemu-trixie"), tmp_path, {"cell_id": f"dev/10.0/{mode}/tcg", "scenario": mode}
    )
    if mode == "cpr-exec":
        assert result["verdict"] == "unsupported", _failed(result)
        assert "Parameter 'mode' does not accept value 'cpr-exec'" in result["reason"]
        assert result["reason"].startswith("10.0")
    else:
        assert result["verdict"] == "pass", _failed(result)
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize("mode", ["normal", "cpr-exec"])
def test_stray_disk_argument_on_the_destination_shows_in_the_device_tree(tmp_path, mode):
    (tmp_path / "stray.img").write_bytes(b"\0" * 65536)
    spec = {"cell_id": f"dev/11.1/{mode}/tcg", "scenario": mode, "guard_rails": False,
            "extra_dst_args": ["/work/stray.img"]}  # fmt: skip
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail"
    tree = next(c for c in result["checks"] if c["name"] == "device-tree")
    assert tree["verdict"] == "fail" and "ide-hd" in tree["observed"]
    assert "+          dev: ide-hd" in tree["detail"]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
def test_stray_argument_is_refused_by_the_guard_rail(tmp_path):
    spec = {"cell_id": "dev/11.1/cpr-exec/tcg", "scenario": "cpr-exec", "extra_dst_args": [""]}
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "error"
    assert (
        "refused by guard rail: destination argv" in result["reason"] and "empty string" in result["reason"]
    )
    assert not [s for s in result["steps"] if s["name"].startswith("start")]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
def test_cpr_exec_with_unshared_ram_is_refused(tmp_path):
    spec = {"cell_id": "dev/11.1/cpr-exec/tcg", "scenario": "cpr-exec", "shared_ram": False}
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "error"
    assert "refused by guard rail" in result["reason"] and "shared memory backend" in result["reason"]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
def test_cpr_exec_with_unshared_ram_loses_the_guest_without_the_guard_rail(tmp_path):
    """QEMU 11.1 bug: cpr-exec does not enforce shared RAM; it 'succeeds' and the guest RAM is zeroed."""
    spec = {
        "cell_id": "dev/11.1/cpr-exec/tcg",
        "scenario": "cpr-exec",
        "shared_ram": False,
        "guard_rails": False,
    }
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail"
    failed = {c["name"] for c in result["checks"] if c["verdict"] == "fail"}
    assert {"counter-qmp", "ram-digest"} <= failed
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.faults
def test_source_killed_mid_migration_fails_and_leaves_nothing(tmp_path):
    spec = {"cell_id": "dev/11.1/normal/tcg", "scenario": "normal", "kill_source_during_migration": True}
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail"
    assert result["reason"].startswith("source QEMU killed (SIGKILL) during migration")
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.faults
@pytest.mark.parametrize("mode", ["normal", "cpr-transfer"])
def test_a_migration_that_never_completes_times_out_in_its_step(tmp_path, mode):
    spec = {"cell_id": f"dev/11.1/{mode}/tcg", "scenario": mode, "hang_migration": True, "step_timeout_s": 5}
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail" and result["reason"].startswith("timeout in step"), result["reason"]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.faults
def test_destination_that_fails_to_start_gives_its_stderr_as_reason(tmp_path):
    spec = {"cell_id": "dev/11.1/normal/tcg", "scenario": "normal", "guard_rails": False,
            "extra_dst_args": ["-no-such-option"]}  # fmt: skip
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail"
    assert "destination" in result["reason"] and "no-such-option" in result["reason"], result["reason"]
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.faults
def test_a_hanging_step_times_out_as_fail_and_is_cleaned_up(tmp_path):
    (tmp_path / "hangs").write_text("#!/bin/sh\nexec sleep 600\n")
    (tmp_path / "hangs").chmod(0o755)
    spec = {
        "cell_id": "dev/fake/normal/tcg",
        "scenario": "normal",
        "src_qemu": "/work/hangs",
        "step_timeout_s": 2,
    }
    result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
    assert result["verdict"] == "fail"
    assert result["reason"].startswith("timeout in step 'connect QMP, enable events'")
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
def test_kvm_requested_without_dev_kvm_falls_back_to_tcg(tmp_path):
    spec = {"cell_id": "dev/11.1/normal/kvm", "scenario": "normal", "accel": "kvm"}
    result, _ = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec, kvm=False)
    assert result["verdict"] == "pass", _failed(result)
    assert (result["accel"], result["accel_used"]) == ("kvm", "tcg")
    assert "ran under TCG" in result["reason"]
    assert result["steps"][0]["name"] == "accel fallback"


@pytest.mark.docker
@pytest.mark.qemu
def test_upgrade_cell_starts_the_destination_from_dst_qemu_in_a_reused_work_dir(tmp_path):
    """dst_qemu is what the new QEMU runs (a logging wrapper here); a second run in the same dir is clean."""
    wrapper = tmp_path / "qemu-new"
    wrapper.write_text('#!/bin/sh\necho "$*" >> /work/wrapper.log\nexec /usr/bin/qemu-system-x86_64 "$@"\n')
    wrapper.chmod(0o755)
    for mode in ("cpr-exec", "cpr-transfer"):
        spec = {"cell_id": f"upgrade/x/{mode}/tcg", "scenario": mode, "dst_qemu": "/work/qemu-new"}
        result, leftovers = run_in_container(image_tag("qemu-trixie-backports"), tmp_path, spec)
        assert result["verdict"] == "pass", _failed(result)
        assert leftovers == []
    logged = (tmp_path / "wrapper.log").read_text().splitlines()
    calls = [c for c in logged if "-name cprguest" in c]  # the guest's QEMUs, not the capability probes
    assert len([c for c in logged if c == "-machine q35,help"]) == 2  # each run asked the new QEMU too
    assert len(calls) == 2 and all("-incoming defer" in c for c in calls)
    assert "qmp-destination.sock" in calls[1] and '"channel-type": "cpr"' in calls[1]
