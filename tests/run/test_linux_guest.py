"""The Linux guest for real: Debian's kernel and the busybox initramfs the harness assembles, on Debian's
QEMU 11.1 in containers, driven by the in-container driver the way the runner and ``detect`` drive it.

A few cells run in ``nox -s selftest``; seeded faults in ``nox -s faults``; every machine profile in
every mode in ``nox -s devices`` (marker ``devices``; the same cells as ``matrices/devices.yaml`` on 11.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from harness.build.guest import GuestBundle, assemble_guest
from harness.config.matrix import load_matrix
from harness.config.schema import BUILTIN_MACHINES
from harness.engine.containers import Engine, ImageRef
from harness.live.kvm import kvm_problem
from harness.live.result import ScenarioResult
from harness.live.spec import FaultSpec
from harness.run import detect
from harness.run.driver import run_driver

pytestmark = [pytest.mark.docker, pytest.mark.qemu]
MODES = ["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"]
LINUX_CHECKS = {"disk-integrity", "net-continuity", "guest-health", "guest-self-check"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.connect(progress=lambda line: None)


@pytest.fixture(scope="module")
def image(engine: Engine) -> ImageRef:
    return engine.ensure_image("qemu-trixie-backports")


@pytest.fixture(scope="module")
def machines(engine: Engine, cache_dir: Path) -> detect.Machines:
    guest: GuestBundle = assemble_guest(engine, cache_dir, progress=lambda line: None)
    profiles = dict(BUILTIN_MACHINES) | load_matrix(REPO / "matrices" / "devices.yaml").machines
    return detect.Machines(profiles, guest)


def run(
    engine: Engine, image: ImageRef, machines: detect.Machines, tmp_path: Path, machine: str, mode: str,
    accel: str = "tcg", faults: dict[str, Any] | None = None,
) -> ScenarioResult:  # fmt: skip
    spec, _, mounts = detect.spec_for(detect.Job(None, mode, 0, machine), accel, machines=machines)
    ram = machines.profiles[machine].ram_mb or spec.guest_ram_mb
    done = run_driver(
        engine, image, spec, mounts=mounts, faults=FaultSpec.from_json(faults) if faults else None,
        kvm=accel == "kvm" and not kvm_problem(), shm_mb=2 * ram + 256, dest=tmp_path,
    )  # fmt: skip
    assert engine.list_own() == []  # the container is gone
    return done.result


def failed(result: ScenarioResult) -> dict[str, str]:
    return {c.name: c.observed for c in result.checks if c.failed}


def test_virtio_machine_survives_cpr_transfer(engine, image, machines, tmp_path) -> None:
    r = run(engine, image, machines, tmp_path, "virtio", "cpr-transfer")
    assert r.verdict == "pass", (r.reason, failed(r))
    checks = {c.name: c for c in r.checks}
    assert set(checks) >= LINUX_CHECKS and checks["device-memory"].verdict == "pass"
    assert checks["guest-self-check"].observed.startswith("CPRSELF VERDICT PASS token=")
    assert (
        "vda (raw)" in checks["disk-integrity"].observed
        and "vdb (qcow2)" in checks["disk-integrity"].observed
    )
    assert "after the switch" in checks["net-continuity"].observed
    assert r.figures["disk_records_after_switch"] >= 1 and r.figures["net_lines"] >= 10
    assert r.figures["disk_records"] == r.figures["disk_records_verified_by_guest"]
    assert {"serial", "console", "vport"} <= set(r.logs) and (tmp_path / "console.log").is_file()
    assert "Run /init as init process" in (tmp_path / "console.log").read_text()
    assert r.qemu_version["source"].startswith("11.1") and r.machine == "virtio"


def test_ovmf_machine_keeps_its_flash_across_cpr_exec(engine, image, machines, tmp_path) -> None:
    r = run(engine, image, machines, tmp_path, "ovmf", "cpr-exec")
    assert r.verdict == "pass", (r.reason, failed(r))
    memory = next(c for c in r.checks if c.name == "device-memory")
    assert "romd system.flash0" in memory.detail and "romd system.flash1" in memory.detail
    assert "acpi XSDT" in memory.detail  # found from the RSDP the guest reported (UEFI)


def test_a_kvm_that_cannot_run_the_guest_is_a_limit_of_the_host(engine, image, machines, tmp_path) -> None:
    """Nested KVM stops a distro kernel in its decompressor: `unsupported` with QEMU's words, not `fail`.
    On a host whose KVM runs it, the cell passes."""
    if kvm_problem():
        pytest.skip(f"/dev/kvm unusable: {kvm_problem()}")
    r = run(engine, image, machines, tmp_path, "virtio", "boot", accel="kvm")
    assert r.verdict in ("pass", "unsupported"), (r.reason, failed(r))
    if r.verdict == "unsupported":
        assert r.reason.startswith("limit of this host, not of QEMU")
        assert "KVM internal error" in r.reason and r.checks == []
    else:
        assert r.accel_used == "kvm"


@pytest.mark.faults
@pytest.mark.parametrize(
    ("fault", "mode", "check"),
    [("modify_disk", "cpr-exec", "disk-integrity"), ("swap_netdev", "normal", "net-continuity")],
)
def test_seeded_device_faults_are_caught(engine, image, machines, tmp_path, fault, mode, check) -> None:
    r = run(engine, image, machines, tmp_path, "virtio", mode, faults={fault: True})
    assert r.verdict == "fail" and check in failed(r), (r.reason, failed(r))


@pytest.mark.devices
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("machine", ["virtio", "ovmf", "display"])
def test_every_linux_machine_in_every_mode(engine, image, machines, tmp_path, machine, mode) -> None:
    r = run(engine, image, machines, tmp_path, machine, mode)
    assert r.verdict == "pass", (r.reason, failed(r))
    assert {c.name for c in r.checks} >= LINUX_CHECKS
