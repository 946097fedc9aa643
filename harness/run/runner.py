"""Run scenario cells of a matrix: one run container per cell, its result stored in the run folder.

The container is started from the image the build used (for a prebuilt tree: its image; for an upgrade
pair: the one of the two images that derives from the other), with the build artifacts mounted
read-only and ``/dev/kvm`` when KVM works on this host (see :mod:`harness.run.driver`). A cell on a Linux
machine profile also gets the assembled guest (:mod:`harness.build.guest`) read-only at ``/guest``, and a
kernel or initramfs the matrix names at ``/guest-custom/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.build.builder import Artifact
from harness.build.guest import GuestBundle, custom_provenance
from harness.config import images
from harness.config.cells import ScenarioCell
from harness.config.repo import CONTAINERS_DIR
from harness.config.schema import Machine, MigrationSet, Settings
from harness.engine.containers import Engine, Limits, Mount
from harness.errors import InfraError
from harness.live.kvm import kvm_problem
from harness.live.machine import MINIMAL
from harness.live.migration import DEFAULT as DEFAULT_MIGRATION
from harness.live.result import ScenarioResult
from harness.live.spec import ScenarioSpec
from harness.live.vocab import Accel, Verdict
from harness.run.driver import engine_failure, run_driver
from harness.store.runs import RunStore


@dataclass
class CellPlan:
    """Everything needed to run one scenario cell."""

    cell: ScenarioCell
    source: Artifact
    target: Artifact | None  # upgrade cells only
    reproduce: str
    guest: GuestBundle | None = None  # cells on a Linux machine profile


GUEST_DIR = "/guest"
LINUX_OBSERVE_S = 2.0  # a TCG Linux guest may take a second to show progress after a switch


def _role_binary(artifact: Artifact, role: str) -> tuple[str, list[Mount], list[str]]:
    if artifact.host_dir is None:  # prebuilt: the binary is part of the image
        return artifact.binary, [], []
    root = f"/qemu/{role}"
    return (
        f"{root}/{artifact.binary}",
        [Mount(artifact.host_dir, root, read_only=True)],
        [f"{root}/share", "/usr/share/qemu", "/usr/share/seabios"],
    )


def _unsupported(plan: CellPlan, reason: str) -> ScenarioResult:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return ScenarioResult(
        cell_id=plan.cell.id,
        scenario=plan.cell.scenario,
        accel=plan.cell.accel,
        verdict=Verdict.UNSUPPORTED,
        reason=reason,
        reproduce=plan.reproduce,
        started_at=now,
        finished_at=now,
    )


def machine_spec(name: str, m: Machine, guest: GuestBundle | None) -> tuple[dict[str, Any], list[Mount]]:
    """The driver's MachineSpec of profile ``m`` ({} for minimal), and what the container must mount."""
    if name == MINIMAL:
        return {}, []
    spec: dict[str, Any] = {"name": name, "guest": m.guest, "vcpus": m.vcpus, "ram_mb": m.ram_mb or 0}
    spec |= {"memory": m.memory, "firmware": m.firmware, "devices": list(m.devices)}
    if m.guest != "linux":
        return spec, []
    if guest is None:
        raise InfraError(f"machine {name}: no assembled Linux guest")
    mounts = [Mount(guest.folder, GUEST_DIR, read_only=True)]
    spec |= {
        "kernel": f"{GUEST_DIR}/vmlinuz",
        "initrd": f"{GUEST_DIR}/initrd.img",
        "firmware_dir": f"{GUEST_DIR}/fw",
    }
    for key in ("kernel", "initrd"):
        given = getattr(m, key)
        if given:
            mounts.append(Mount(Path(given), f"/guest-custom/{key}", read_only=True))
            spec[key] = f"/guest-custom/{key}"
    return spec, mounts


def migration_spec(name: str, m: MigrationSet) -> dict[str, Any]:
    """The driver's MigrationOptions of option set ``m`` ({} for the default set)."""
    if name == DEFAULT_MIGRATION:
        return {}
    return {"name": name, "capabilities": list(m.capabilities), "parameters": dict(m.parameters)}


def guest_provenance(m: Machine, guest: GuestBundle | None) -> dict[str, str]:
    if m.guest != "linux" or guest is None:
        return {}
    if m.kernel and m.initrd:
        return {**custom_provenance(Path(m.kernel), Path(m.initrd)), "firmware": str(guest.firmware)}
    return dict(guest.provenance)


def cell_spec(
    plan: CellPlan, settings: Settings, src_bin: str, dst_bin: str, dst_dirs: list[str], repeat: int = 1
) -> ScenarioSpec:
    cell = plan.cell
    machine, _ = machine_spec(cell.machine_name, cell.machine, plan.guest)
    return ScenarioSpec(
        cell_id=cell.id,
        scenario=cell.scenario,
        accel=cell.accel,
        src_qemu=src_bin,
        dst_qemu=dst_bin,
        data_dirs=_role_binary(plan.source, "src")[2],
        dst_data_dirs=dst_dirs if plan.target else None,
        workdir="/work",
        guest_ram_mb=settings.guest_ram_mb,
        step_timeout_s=settings.step_timeout_s,
        reproduce=plan.reproduce,
        repeat=repeat,
        observe_s=LINUX_OBSERVE_S if cell.machine.guest == "linux" else 1.0,
        machine=machine,
        migration=migration_spec(cell.migration_name, cell.migration),
    )


def run_cell(
    engine: Engine, plan: CellPlan, store: RunStore, settings: Settings, repeat: int = 1
) -> ScenarioResult:
    """Run one scenario cell in its own container; always returns a stored result."""
    cell = plan.cell
    target = plan.target or plan.source
    image = plan.source.image
    if target.image.id != plan.source.image.id:
        name = images.run_image(CONTAINERS_DIR, plan.source.image.name, target.image.name)
        if name is None:
            result = _unsupported(
                plan,
                f"source ({plan.source.cell_id}) and target ({target.cell_id}) run in "
                f"unrelated images ({plan.source.image.name}, {target.image.name}); "
                "both QEMUs must run in one container",
            )
            store.save_scenario(result)
            return result
        image = plan.source.image if name == plan.source.image.name else target.image
    src_bin, mounts, _ = _role_binary(plan.source, "src")
    dst_bin, dst_mounts, dst_dirs = _role_binary(target, "dst") if plan.target else (src_bin, [], [])
    shm_mb = 2 * (cell.machine.ram_mb or settings.guest_ram_mb) + 256  # a machine's RAM, else settings'
    limits = Limits(memory_mb=settings.scenario_memory_mb or 2 * shm_mb + 1024, pids=settings.pids_limit)
    try:
        spec = cell_spec(plan, settings, src_bin, dst_bin, dst_dirs, repeat)
        guest_mounts = machine_spec(cell.machine_name, cell.machine, plan.guest)[1]
    except InfraError as exc:
        result = engine_failure(cell.id, exc)
        result.reproduce, result.machine, result.migration = (
            plan.reproduce,
            cell.machine_name,
            cell.migration_name,
        )
        store.save_scenario(result)
        return result
    kvm_note = kvm_problem() if cell.accel is Accel.KVM else ""
    if cell.accel is Accel.KVM and kvm_note:
        spec.kvm_unavailable_reason = f"host: {kvm_note}"
    started = time.monotonic()
    try:
        run = run_driver(
            engine,
            image,
            spec,
            mounts=[*mounts, *dst_mounts, *guest_mounts],
            kvm=cell.accel is Accel.KVM and not kvm_note,
            shm_mb=shm_mb,
            limits=limits,
            dest=store.cell_path(cell.id),
            label=f"scenario {cell.id}",
        )
        result = run.result
    except InfraError as exc:
        result = engine_failure(cell.id, exc)
    result.reproduce = plan.reproduce
    result.machine, result.migration = cell.machine_name, cell.migration_name
    result.guest = guest_provenance(cell.machine, plan.guest)
    result.timings["cell_s"] = round(time.monotonic() - started, 3)  # container start to result stored
    store.save_scenario(result)
    return result
