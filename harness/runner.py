"""Run scenario cells: one run container per cell, the scenario driven inside it, results collected.

The container is started from the image the build used (for a prebuilt tree: its image), with an init
as PID 1, ``/dev/kvm`` when KVM works on this host, a ``/dev/shm`` large enough for the guest RAM, the
build artifacts and this package mounted read-only, and a private (0700) work directory. Inside it,
``python3 -m harness.scenarios spec.json result.json`` drives QEMU over QMP. Afterwards the container
is removed in every outcome, and the result with its logs is copied into the run's store.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.build import Artifact
from harness.containers import Engine, Mount
from harness.errors import InfraError
from harness.matrix import ScenarioCell, Settings, run_image
from harness.results import RunStore, ScenarioResult

PACKAGE_DIR = Path(__file__).resolve().parent
IN_CONTAINER_ROOT = "/opt/cpr-harness"
KVM_GET_API_VERSION = 0xAE00


def kvm_usable(device: Path = Path("/dev/kvm")) -> tuple[bool, str]:
    """Whether this host can lend /dev/kvm to a container (open + KVM_GET_API_VERSION == 12)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"{device}: {exc.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return False, f"{device}: KVM_GET_API_VERSION failed: {exc.strerror}"
    finally:
        os.close(fd)
    return (version == 12, f"KVM API version {version}")


@dataclass
class CellPlan:
    """Everything needed to run one scenario cell."""

    cell: ScenarioCell
    source: Artifact
    target: Artifact | None  # upgrade cells only
    reproduce: str


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
        verdict="unsupported",
        reason=reason,
        reproduce=plan.reproduce,
        started_at=now,
        finished_at=now,
    )


def run_cell(
    engine: Engine,
    plan: CellPlan,
    store: RunStore,
    settings: Settings,
) -> ScenarioResult:
    """Run one scenario cell in its own container; always returns a stored result."""
    cell = plan.cell
    target = plan.target or plan.source
    image = plan.source.image
    if target.image.id != plan.source.image.id:
        name = run_image(PACKAGE_DIR.parent, plan.source.image.name, target.image.name)
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
    src_bin, mounts, data_dirs = _role_binary(plan.source, "src")
    dst_bin, dst_mounts, dst_dirs = _role_binary(target, "dst") if plan.target else (src_bin, [], [])
    mounts = [*mounts, *dst_mounts, Mount(PACKAGE_DIR, f"{IN_CONTAINER_ROOT}/harness", read_only=True)]
    kvm_ok, kvm_note = kvm_usable() if cell.accel == "kvm" else (False, "")
    work = Path(tempfile.mkdtemp(prefix=f"cpr-harness-run-{os.getpid()}-"))  # owner pid: leak checks
    os.chmod(work, 0o700)
    spec = {
        "cell_id": cell.id,
        "scenario": cell.scenario,
        "accel": cell.accel,
        "src_qemu": src_bin,
        "dst_qemu": dst_bin,
        "data_dirs": data_dirs,
        "dst_data_dirs": dst_dirs if plan.target else None,
        "workdir": "/work",
        "guest_ram_mb": settings.guest_ram_mb,
        "step_timeout_s": settings.step_timeout_s,
        "reproduce": plan.reproduce,
    }
    if cell.accel == "kvm" and not kvm_ok:
        spec["kvm_unavailable_reason"] = f"host: {kvm_note}"
    (work / "spec.json").write_text(json.dumps(spec, indent=2))
    started = time.monotonic()
    try:
        with engine.session(
            image,
            mounts=[*mounts, Mount(work, "/work")],
            network=False,
            user="0:0",
            env={"PYTHONPATH": IN_CONTAINER_ROOT, "PYTHONDONTWRITEBYTECODE": "1"},
            devices=["/dev/kvm:/dev/kvm:rwm"] if kvm_ok else [],
            shm_size=f"{2 * settings.guest_ram_mb + 256}m",
            label=f"scenario {cell.id}",
        ) as box:
            limit = settings.step_timeout_s * 12 + 120
            run = box.exec(
                ["python3", "-m", "harness.scenarios", "/work/spec.json", "/work/result.json"],
                workdir="/work",
                timeout=limit,
            )
        result = _collect(work, store, cell, run.output, run.exit_code, run.timed_out)
    except InfraError as exc:
        result = ScenarioResult.error(cell.id, f"infra: {exc.message}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.reproduce = plan.reproduce
    result.timings["cell_s"] = round(time.monotonic() - started, 3)  # container start to result stored
    store.save_scenario(result)
    return result


def _collect(
    work: Path, store: RunStore, cell: ScenarioCell, output: str, code: int, timed_out: bool
) -> ScenarioResult:
    cell_dir = store.cell_dir(cell.id)
    (cell_dir / "driver.log").write_text(output)
    try:
        result = ScenarioResult.from_json(json.loads((work / "result.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = "timed out" if timed_out else f"exited {code}"
        tail = "\n".join(output.splitlines()[-15:])
        result = ScenarioResult.error(cell.id, f"scenario driver {why} without a result ({exc}):\n{tail}")
        result.logs["driver"] = "driver.log"
        return result
    for name, rel in list(result.logs.items()):
        src = work / rel
        if src.is_file():
            shutil.copy2(src, cell_dir / src.name)
            result.logs[name] = src.name
        else:
            del result.logs[name]
    result.logs["driver"] = "driver.log"
    return result
