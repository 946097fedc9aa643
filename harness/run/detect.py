"""Detection power: seeded live-update bugs must be caught, clean runs must stay green.

``python -m harness detect [--image NAME-or-TAG] [--machines minimal,virtio] [--clean-runs 20] [--jobs 2]
[--out DIR]`` (or ``nox -s detect``) runs every fault class (the fields of
:class:`~harness.live.spec.FaultSpec`) against every mode it applies to, on its machine profile, on real
QEMU in containers of the run image, and prints a table class x mode -> caught (by which check) or
MISSED. Then it runs every mode on every chosen machine profile ``--clean-runs`` times without a fault:
any verdict but ``pass`` is a false alarm. Machine profiles other than ``minimal`` are those of
``--matrix`` (default ``matrices/devices.yaml``); the Linux guest is assembled (or taken from the cache).

Exit status: 0 every applicable fault was caught by its expected check and there was no false alarm,
1 otherwise, 3 when the Docker engine or the image is unavailable.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.build.guest import GuestBundle, assemble_guest
from harness.config.matrix import load_matrix
from harness.config.schema import BUILTIN_MACHINES, Machine
from harness.engine.containers import Engine, ImageRef, Mount
from harness.errors import ConfigError, InfraError
from harness.live.files import write_json_atomic, write_text_atomic
from harness.live.kvm import kvm_problem
from harness.live.machine import MINIMAL
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import MIGRATION_MODES, MODES, CellId
from harness.run.driver import engine_failure, run_driver
from harness.run.runner import LINUX_OBSERVE_S, machine_spec

MIGRATIONS = MIGRATION_MODES
STRAY_DISK = "stray.img"  # created in the work dir for the extra-device fault


@dataclass(frozen=True)
class Fault:
    """One seeded bug class: the spec fields that inject it, where it applies, what must catch it."""

    key: str
    title: str
    modes: tuple[str, ...]
    spec: dict[str, Any]
    expect: str  # a check name, or "timeout" / "qemu-abort" (read from the verdict's reason)
    step_timeout_s: float = 20.0
    machine: str = MINIMAL  # the machine profile it runs on

    @property
    def label(self) -> str:
        return self.title + (f" [{self.machine}]" if self.machine != MINIMAL else "")


FAULTS: tuple[Fault, ...] = (
    Fault("a", "destination grows an extra device (stray positional disk argument)", MIGRATIONS,
          {"guard_rails": False, "extra_dst_args": [f"/work/{STRAY_DISK}"]}, "device-tree"),
    Fault("b", "guest restarted on the destination (system_reset after resume)", MIGRATIONS,
          {"reset_destination": True}, "boot-marker"),
    Fault("c", "guest RAM altered between source stop and destination resume", MIGRATIONS,
          {"corrupt_ram": True}, "ram-digest"),
    Fault("d1", "old QEMU left alive (no quit)", ("normal", "cpr-reboot", "cpr-transfer"),
          {"leave_source_running": True}, "process-hygiene"),
    Fault("d2", "a child left defunct (never reaped)", MODES, {"leave_zombie": True}, "process-hygiene"),
    Fault("e1", "RAM in the cpr-reboot state file (x-ignore-shared off)", ("cpr-reboot",),
          {"ignore_shared": False}, "state-file-size"),
    Fault("e2", "RAM in the cpr-reboot state file (anonymous RAM backend)", ("cpr-reboot",),
          {"shared_ram": False}, "state-file-size"),
    Fault("f", "destination left paused (stop after resume)", MIGRATIONS,
          {"pause_destination": True}, "runstates"),
    Fault("g", "migration hangs (held at pre-switchover)", MIGRATIONS, {"hang_migration": True}, "timeout",
          step_timeout_s=8.0),
    Fault("bug1", "QEMU 11.1.3: cpr-transfer `migrate {uri}` without channels (source aborts)",
          ("cpr-transfer",), {"guard_rails": False, "cpr_transfer_uri_only": True}, "qemu-abort"),
    Fault("bug2", "QEMU 11.1.3: cpr-exec with plain -m RAM (guest continues on zeroed RAM)", ("cpr-exec",),
          {"guard_rails": False, "shared_ram": False}, "counter-qmp"),
    Fault("h1", "disk image modified between the two QEMUs (a record rewritten)", MIGRATIONS,
          {"modify_disk": True}, "disk-integrity", 60.0, "virtio"),
    Fault("h2", "destination given a different disk (an empty image)", MIGRATIONS,
          {"swap_disk": True}, "disk-integrity", 60.0, "virtio"),
    Fault("i", "network backend swapped (destination's NIC on another peer)", MIGRATIONS,
          {"swap_netdev": True}, "net-continuity", 60.0, "virtio"),
    Fault("j1", "firmware ROM rewritten in the new QEMU before it resumes", ("cpr-transfer", "cpr-exec"),
          {"rewrite_rom": True}, "device-memory"),
    Fault("j2", "firmware flash (OVMF) rewritten in the new QEMU before it resumes",
          ("cpr-transfer", "cpr-exec"), {"rewrite_rom": True}, "device-memory", 60.0, "ovmf"),
)  # fmt: skip
FAULT_KEYS = tuple(f.key for f in FAULTS)


@dataclass
class Outcome:
    """One run: a fault (or "clean") on a mode, and what the harness made of it."""

    fault: str  # a Fault.key, or "clean"
    mode: str
    verdict: str
    reason: str
    failed: list[str] = field(default_factory=list)  # names of failed checks
    rep: int = 0
    seconds: float = 0.0
    machine: str = MINIMAL

    def detectors(self) -> list[str]:
        """What flagged the run: "timeout", "qemu-abort" (from the reason), then the failed checks."""
        found = []
        if self.verdict == "fail" and self.reason.startswith("timeout in step"):
            found.append("timeout")
        if self.verdict == "fail" and "SIGABRT" in self.reason:
            found.append("qemu-abort")
        return found + [c for c in self.failed if c not in found]

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "detectors": self.detectors()}


def outcome_from_result(
    fault: str, mode: str, result: dict[str, Any], rep: int = 0, machine: str = MINIMAL
) -> Outcome:
    failed = [c["name"] for c in result.get("checks", []) if c.get("verdict") == "fail"]
    verdict, reason = str(result.get("verdict", "error")), str(result.get("reason", ""))
    return Outcome(fault, mode, verdict, reason, failed, rep, machine=machine)


def judge(fault: Fault, outcome: Outcome) -> str:
    """``caught`` (by the expected detector) | ``caught-other`` | ``MISSED`` (passed) | ``error``."""
    if outcome.verdict == "pass":
        return "MISSED"
    if outcome.verdict != "fail":
        return "error"
    return "caught" if fault.expect in outcome.detectors() else "caught-other"


def cell_text(fault: Fault, outcome: Outcome) -> str:
    status, found = judge(fault, outcome), outcome.detectors()
    if status == "caught":
        others = [d for d in found if d != fault.expect]
        return f"caught: **{fault.expect}**" + (f" (+{', '.join(others)})" if others else "")
    if status == "caught-other":
        return f"WRONG CHECK: {', '.join(found) or '?'} (expected {fault.expect})"
    if status == "MISSED":
        return "MISSED"
    return f"{outcome.verdict.upper()}: {outcome.reason[:80]}"


def fault_table(faults: Iterable[Fault], outcomes: list[Outcome], modes: Iterable[str] = MODES) -> str:
    modes = list(modes)
    by = {(o.fault, o.mode): o for o in outcomes if o.fault != "clean"}
    lines = ["| class | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for f in faults:
        cells = [cell_text(f, by[(f.key, m)]) if (f.key, m) in by else "–" for m in modes]
        lines.append(f"| {f.key}: {f.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def clean_table(outcomes: list[Outcome], modes: Iterable[str] = MODES) -> str:
    head = "| machine | mode | clean runs | pass | false alarms | first false alarm |"
    lines = [head, "|---|---|---|---|---|---|"]
    machines = list(dict.fromkeys(o.machine for o in outcomes if o.fault == "clean"))
    for machine in machines:
        for m in modes:
            runs = [o for o in outcomes if o.fault == "clean" and o.mode == m and o.machine == machine]
            if not runs:
                continue
            bad = [o for o in runs if o.verdict != "pass"]
            first = f"{bad[0].verdict}: {bad[0].reason[:100]}" if bad else "–"
            lines.append(f"| {machine} | {m} | {len(runs)} | {len(runs) - len(bad)} | {len(bad)} | {first} |")
    return "\n".join(lines)


def problems(faults: Iterable[Fault], outcomes: list[Outcome]) -> list[str]:
    """Everything that makes the campaign fail: a fault not caught by its check, a false alarm."""
    by_key = {f.key: f for f in faults}
    found = []
    for o in outcomes:
        if o.fault == "clean":
            if o.verdict != "pass":
                found.append(f"false alarm: clean {o.machine}/{o.mode} #{o.rep}: {o.verdict}: {o.reason}")
        elif o.fault in by_key and judge(by_key[o.fault], o) != "caught":
            found.append(f"{o.fault} on {o.mode}: {cell_text(by_key[o.fault], o)}")
    return found


# ---- running (host side: one container per run) ----
@dataclass(frozen=True)
class Job:
    fault: Fault | None  # None = clean run
    mode: str
    rep: int = 0
    machine: str = MINIMAL  # a clean run's machine profile (a fault's is its own)

    @property
    def machine_name(self) -> str:
        return self.fault.machine if self.fault else self.machine

    @property
    def name(self) -> str:
        at = f"{self.machine_name}/" if self.machine_name != MINIMAL else ""
        return f"{self.fault.key if self.fault else 'clean'}/{at}{self.mode}" + (
            f"/{self.rep}" if self.fault is None else ""
        )


def plan(
    faults: Iterable[Fault], modes: Iterable[str], clean_runs: int, machines: Iterable[str] = (MINIMAL,)
) -> list[Job]:
    """Every fault on every mode it applies to (when its machine is chosen), then ``clean_runs`` rounds of
    every mode on every machine."""
    modes, machines = list(modes), list(machines)
    jobs = [Job(f, m) for f in faults if f.machine in machines for m in f.modes if m in modes]
    return jobs + [
        Job(None, m, rep, mach) for rep in range(1, clean_runs + 1) for mach in machines for m in modes
    ]


@dataclass(frozen=True)
class Machines:
    """The machine profiles a campaign may run on, and the Linux guest when one of them needs it."""

    profiles: dict[str, Machine]
    guest: GuestBundle | None = None


MINIMAL_ONLY = Machines(dict(BUILTIN_MACHINES))


def spec_for(
    job: Job, accel: str, default_timeout: float = 60.0, machines: Machines = MINIMAL_ONLY
) -> tuple[ScenarioSpec, FaultSpec | None, list[Mount]]:
    """The scenario spec of one run, its fault set (None for a clean run) and the guest's mounts."""
    name = job.machine_name
    machine, mounts = machine_spec(name, machines.profiles[name], machines.guest)
    spec = ScenarioSpec(
        cell_id=f"detect/{job.name}/{accel}",
        scenario=job.mode,
        accel=accel,
        workdir="/work",
        step_timeout_s=job.fault.step_timeout_s if job.fault else default_timeout,
        observe_s=LINUX_OBSERVE_S if machines.profiles[name].guest == "linux" else 1.0,
        machine=machine,
    )
    return spec, FaultSpec.from_json(job.fault.spec) if job.fault else None, mounts


def run_job(
    engine: Engine, image: ImageRef, job: Job, accel: str, out: Path | None, kvm: bool,
    machines: Machines = MINIMAL_ONLY,
) -> Outcome:  # fmt: skip
    """Run one scenario in a fresh container of ``image``; keep its result and logs under ``out``."""
    started = time.monotonic()
    cell_id = f"detect/{job.name}/{accel}"
    dest = out / CellId(cell_id).folder() if out is not None else None
    try:
        spec, faults, mounts = spec_for(job, accel, machines=machines)
        ram_mb = machines.profiles[job.machine_name].ram_mb or spec.guest_ram_mb
        run = run_driver(
            engine, image, spec, mounts=mounts, faults=faults, kvm=kvm, dest=dest, label=f"detect {job.name}",
            extra_files={STRAY_DISK: bytes(65536)}, shm_mb=2 * ram_mb + 256,
        )  # fmt: skip
        result = run.result
    except InfraError as exc:
        result = engine_failure(cell_id, exc)
    if dest is not None:
        write_json_atomic(dest / "result.json", result.to_json())
    outcome = outcome_from_result(
        job.fault.key if job.fault else "clean", job.mode, result.to_json(), job.rep, job.machine_name
    )
    outcome.seconds = round(time.monotonic() - started, 2)
    return outcome


def run_campaign(
    jobs: list[Job],
    runner: Callable[[Job], Outcome],
    n_jobs: int = 1,
    progress: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run every job (``n_jobs`` at a time); outcomes in plan order."""
    done, lock = [0], threading.Lock()

    def one(job: Job) -> Outcome:
        outcome = runner(job)
        with lock:
            done[0] += 1
            flag = ", ".join(outcome.detectors()) or "-"
            progress(f"[{done[0]}/{len(jobs)}] {job.name}: {outcome.verdict} ({flag}) {outcome.seconds}s")
        return outcome

    if n_jobs <= 1:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="detect") as pool:
        return list(pool.map(one, jobs))


def report(faults: list[Fault], outcomes: list[Outcome], image: str, accel: str) -> str:
    clean = [o for o in outcomes if o.fault == "clean"]
    bad = problems(faults, outcomes)
    verdict = (
        "Every applicable class was caught by its expected check." if not bad else f"{len(bad)} problem(s):"
    )
    return "\n".join([
        f"Image `{image}`, accel {accel}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        fault_table(faults, outcomes),
        "",
        clean_table(outcomes),
        "",
        f"False alarms: {sum(o.verdict != 'pass' for o in clean)} in {len(clean)} clean runs. {verdict}",
        *[f"- {p}" for p in bad],
    ])  # fmt: skip


def run_detect(
    engine: Engine,
    image: ImageRef,
    *,
    faults: list[Fault],
    modes: list[str],
    clean_runs: int,
    jobs: int,
    accel: str,
    out: Path,
    progress: Callable[[str], None] = print,
    machines: Machines = MINIMAL_ONLY,
) -> int:
    """The whole campaign; writes ``detect.md`` and ``detect.json`` into ``out``; returns the exit code."""
    out.mkdir(parents=True, exist_ok=True)
    kvm = accel == "kvm" and not kvm_problem()
    planned = plan(faults, modes, clean_runs, machines.profiles)
    progress(f"detect: {len(planned)} runs on {image.tag} ({accel}), {jobs} at a time; results in {out}")
    outcomes = run_campaign(
        planned, lambda j: run_job(engine, image, j, accel, out, kvm, machines), jobs, progress
    )
    text = report(faults, outcomes, image.tag, accel if kvm or accel == "tcg" else "tcg")
    write_text_atomic(out / "detect.md", text + "\n")
    write_json_atomic(out / "detect.json", [o.to_json() for o in outcomes])
    progress("\n" + text)
    return 1 if problems(faults, outcomes) else 0


def main(args: argparse.Namespace, say: Callable[[str], None] = print) -> int:
    """``python -m harness detect``: check the options, get the image, run the campaign."""
    faults = _chosen("--faults", args.faults, FAULT_KEYS)
    modes = _chosen("--modes", args.modes, tuple(MODES))
    if args.clean_runs < 0 or args.jobs < 1:
        raise ConfigError("--clean-runs must be >= 0 and --jobs >= 1")
    profiles = _machines(args.matrix, args.machines)
    engine = Engine.connect(progress=say)
    image = ImageRef(args.image, args.image, "") if ":" in args.image else engine.ensure_image(args.image)
    linux = any(m.guest == "linux" for m in profiles.values())
    machines = Machines(profiles, assemble_guest(engine, args.cache.resolve(), say) if linux else None)
    out = args.out or Path("reports") / f"detect-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    chosen = [f for f in FAULTS if f.key in faults]
    return run_detect(
        engine, image, faults=chosen, modes=modes, clean_runs=args.clean_runs, jobs=args.jobs,
        accel=args.accel, out=out, progress=say, machines=machines,
    )  # fmt: skip


def _machines(matrix: Path, given: str) -> dict[str, Machine]:
    """The machine profiles ``--machines`` names (default: every profile of ``matrix``)."""
    known = dict(BUILTIN_MACHINES) | load_matrix(matrix).machines
    picked = _chosen("--machines", given, tuple(known))
    return {name: known[name] for name in picked}


def _chosen(option: str, given: str, known: tuple[str, ...]) -> list[str]:
    picked = [x for x in given.split(",") if x] or list(known)
    unknown = [x for x in picked if x not in known]
    if unknown:
        raise ConfigError(f"{option}: unknown {', '.join(unknown)}", hint=f"known: {', '.join(known)}")
    return [k for k in known if k in picked]
