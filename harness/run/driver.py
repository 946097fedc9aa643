"""Run the in-container driver once: one container, one scenario, its result and logs collected.

Shared by the matrix runner and the detection campaign. The container runs as the non-root scenario
user (with ``/dev/kvm``'s group when KVM is asked for and usable; see :mod:`harness.engine.sandbox`),
without capabilities, with pids and memory limits, an init as PID 1, no network, a ``/dev/shm`` large
enough for the guests, the QEMU artifacts it needs (read-only), a private (0700) work folder at
``/work`` owned by that user, and **only** ``harness/live`` of this package (mounted read-only at
``/opt/cpr-harness/harness/live``: ``harness`` is a namespace package there, so the in-container code
cannot import anything else of the harness even by mistake).

What the container writes is data, never a path the host follows (:func:`harvest`): the result is read
from a regular file at a fixed name, and a log is copied only when its name is a plain file name in the
work folder that is a regular file (not a symlink); anything else is refused and named in the result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import live
from harness.engine.containers import Engine, ImageRef, Limits, Mount
from harness.engine.sandbox import give_folder, kvm_user, scenario_user
from harness.errors import InfraError
from harness.live.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from harness.live.result import ScenarioResult
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.run.preflight import driver_requirements
from harness.store.untrusted import copy_untrusted, read_untrusted

LIVE_DIR = Path(live.__file__).resolve().parent
IN_CONTAINER_ROOT = "/opt/cpr-harness"
RESULT_MAX_BYTES = 64 << 20
LOG_MAX_BYTES = 256 << 20


@dataclass
class DriverRun:
    result: ScenarioResult
    output: str  # the driver's own stdout/stderr
    exit_code: int
    timed_out: bool


def driver_argv(faults: bool) -> list[str]:
    argv = ["python3", "-m", "harness.live", "/work/spec.json", "/work/result.json"]
    return [*argv, "/work/faults.json"] if faults else argv


def run_driver(
    engine: Engine,
    image: ImageRef,
    spec: ScenarioSpec,
    *,
    mounts: list[Mount] | None = None,
    faults: FaultSpec | None = None,
    kvm: bool = False,
    shm_mb: int = 768,
    limits: Limits | None = None,
    dest: Path | None = None,
    label: str = "",
    extra_files: dict[str, bytes] | None = None,
) -> DriverRun:
    """Run ``spec`` in a container of ``image``; copy ``result.json``'s logs and ``driver.log`` into
    ``dest`` (when given). Raises InfraError when the engine fails; every other outcome is a result."""
    work = Path(tempfile.mkdtemp(prefix=f"cpr-harness-run-{os.getpid()}-"))  # owner pid: leak checks
    user = kvm_user() if kvm else scenario_user()
    try:
        os.chmod(work, 0o700)
        write_json_atomic(work / "spec.json", spec.to_json())
        if faults is not None:
            write_json_atomic(work / "faults.json", faults.to_json())
        for name, data in (extra_files or {}).items():  # the container's user may write them (a disk)
            write_bytes_atomic(work / name, data, 0o666)
        if os.geteuid() == 0:
            give_folder(work, user)  # the container writes here as its own (non-root) user
        live = Mount(LIVE_DIR, f"{IN_CONTAINER_ROOT}/harness/live", read_only=True)
        with engine.session(
            image,
            mounts=[*(mounts or []), live, Mount(work, "/work")],
            network=False,
            user=user,
            env={"PYTHONPATH": IN_CONTAINER_ROOT, "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"},
            devices=["/dev/kvm:/dev/kvm:rwm"] if kvm else [],
            shm_size=f"{shm_mb}m",
            limits=limits or Limits(memory_mb=2 * shm_mb + 1024),
            label=label or f"scenario {spec.cell_id}",
        ) as box:
            run = box.exec(
                driver_argv(faults is not None),
                workdir="/work",
                timeout=spec.step_timeout_s * 12 * spec.repeat + 120,
            )
            # Why a driver left no result is asked only then: one exec less on every good cell.
            if run.exit_code != 0 and not os.path.lexists(work / "result.json"):
                lacking = driver_requirements(box, image)
                if lacking:
                    return DriverRun(ScenarioResult.error(spec.cell_id, lacking), run.output, 1, False)
        result = harvest(work, spec.cell_id, run.output, run.exit_code, run.timed_out, dest)
        return DriverRun(result, run.output, run.exit_code, run.timed_out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def harvest(
    work: Path, cell_id: str, output: str, code: int, timed_out: bool, dest: Path | None
) -> ScenarioResult:
    """The result a container left in ``work`` (untrusted), its logs copied into ``dest`` when given.

    ``result.json`` must be a regular file; each log it names must be a plain name of a regular file in
    ``work``: a symlink, an absolute name, ``..`` or a non-file is refused, and the refusal is noted in
    the result's reason. ``driver.log`` (the driver's own output, ``output``) is always written."""
    result = _read_result(work, cell_id, output, code, timed_out)
    if dest is not None:
        _collect_logs(work, dest, result, output)
    return result


def _read_result(work: Path, cell_id: str, output: str, code: int, timed_out: bool) -> ScenarioResult:
    why = "timed out" if timed_out else f"exited {code}"
    tail = "\n".join(output.splitlines()[-15:])
    try:
        data = read_untrusted(work, "result.json", RESULT_MAX_BYTES)
        result = ScenarioResult.from_json(json.loads(data.decode("utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ScenarioResult.error(cell_id, f"scenario driver {why} without a result ({exc}):\n{tail}")
    if result.cell_id != cell_id:
        return ScenarioResult.error(
            cell_id, f"the driver wrote a result for {result.cell_id!r}, not this cell"
        )
    return result


def _collect_logs(work: Path, dest: Path, result: ScenarioResult, output: str) -> None:
    """Copy the logs the result names from the work folder into ``dest`` (refusals noted in the result)."""
    dest.mkdir(parents=True, exist_ok=True)
    refused = []
    for name, rel in list(result.logs.items()):
        try:
            copy_untrusted(work, rel, dest / rel, LOG_MAX_BYTES, 0o644)
        except FileNotFoundError:
            del result.logs[name]
            continue
        except (OSError, ValueError) as exc:
            refused.append(f"{name}: {exc}")
            del result.logs[name]
    write_text_atomic(dest / "driver.log", output)
    result.logs["driver"] = "driver.log"
    if refused:
        note = "logs refused: " + "; ".join(refused)
        result.reason = f"{result.reason} [{note}]" if result.reason else note


def engine_failure(cell_id: str, exc: InfraError) -> ScenarioResult:
    """The result of a cell whose container the engine could not run: an infrastructure error."""
    return ScenarioResult.error(cell_id, exc.message, infra=True)
