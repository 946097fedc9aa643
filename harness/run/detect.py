"""Detection power: seeded live-update bugs must be caught, clean runs must stay green.

``python -m harness detect [--image NAME-or-TAG] [--clean-runs 20] [--jobs 2] [--out DIR]`` (or
``nox -s detect``) runs every fault class (the fields of :class:`~harness.live.spec.FaultSpec`) against
every mode it applies to, on real QEMU in containers of the run image, and prints a table class x mode
-> caught (by which check) or MISSED. Then it runs every mode ``--clean-runs`` times without a fault:
any verdict but ``pass`` is a false alarm.

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

from harness.engine.containers import Engine, ImageRef
from harness.errors import ConfigError, InfraError
from harness.live.files import write_json_atomic, write_text_atomic
from harness.live.kvm import kvm_problem
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import MIGRATION_MODES, MODES, CellId
from harness.run.driver import engine_failure, run_driver

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


def outcome_from_result(fault: str, mode: str, result: dict[str, Any], rep: int = 0) -> Outcome:
    failed = [c["name"] for c in result.get("checks", []) if c.get("verdict") == "fail"]
    return Outcome(
        fault, mode, str(result.get("verdict", "error")), str(result.get("reason", "")), failed, rep
    )


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
        lines.append(f"| {f.key}: {f.title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def clean_table(outcomes: list[Outcome], modes: Iterable[str] = MODES) -> str:
    lines = ["| mode | clean runs | pass | false alarms | first false alarm |", "|---|---|---|---|---|"]
    for m in modes:
        runs = [o for o in outcomes if o.fault == "clean" and o.mode == m]
        if not runs:
            continue
        bad = [o for o in runs if o.verdict != "pass"]
        first = f"{bad[0].verdict}: {bad[0].reason[:100]}" if bad else "–"
        lines.append(f"| {m} | {len(runs)} | {len(runs) - len(bad)} | {len(bad)} | {first} |")
    return "\n".join(lines)


def problems(faults: Iterable[Fault], outcomes: list[Outcome]) -> list[str]:
    """Everything that makes the campaign fail: a fault not caught by its check, a false alarm."""
    by_key = {f.key: f for f in faults}
    found = []
    for o in outcomes:
        if o.fault == "clean":
            if o.verdict != "pass":
                found.append(f"false alarm: clean {o.mode} #{o.rep}: {o.verdict}: {o.reason}")
        elif o.fault in by_key and judge(by_key[o.fault], o) != "caught":
            found.append(f"{o.fault} on {o.mode}: {cell_text(by_key[o.fault], o)}")
    return found


# ---- running (host side: one container per run) ----
@dataclass(frozen=True)
class Job:
    fault: Fault | None  # None = clean run
    mode: str
    rep: int = 0

    @property
    def name(self) -> str:
        return f"{self.fault.key if self.fault else 'clean'}/{self.mode}" + (
            f"/{self.rep}" if self.fault is None else ""
        )


def plan(faults: Iterable[Fault], modes: Iterable[str], clean_runs: int) -> list[Job]:
    modes = list(modes)
    jobs = [Job(f, m) for f in faults for m in f.modes if m in modes]
    return jobs + [Job(None, m, rep) for rep in range(1, clean_runs + 1) for m in modes]


def spec_for(job: Job, accel: str, default_timeout: float = 60.0) -> tuple[ScenarioSpec, FaultSpec | None]:
    """The scenario spec of one run, and its fault set (None for a clean run)."""
    spec = ScenarioSpec(
        cell_id=f"detect/{job.name}/{accel}",
        scenario=job.mode,
        accel=accel,
        workdir="/work",
        step_timeout_s=job.fault.step_timeout_s if job.fault else default_timeout,
    )
    return spec, FaultSpec.from_json(job.fault.spec) if job.fault else None


def run_job(engine: Engine, image: ImageRef, job: Job, accel: str, out: Path | None, kvm: bool) -> Outcome:
    """Run one scenario in a fresh container of ``image``; keep its result and logs under ``out``."""
    spec, faults = spec_for(job, accel)
    started = time.monotonic()
    dest = out / CellId(spec.cell_id).folder() if out is not None else None
    try:
        run = run_driver(
            engine, image, spec, faults=faults, kvm=kvm, dest=dest, label=f"detect {job.name}",
            extra_files={STRAY_DISK: bytes(65536)},
        )  # fmt: skip
        result = run.result
    except InfraError as exc:
        result = engine_failure(spec.cell_id, exc)
    if dest is not None:
        write_json_atomic(dest / "result.json", result.to_json())
    outcome = outcome_from_result(
        job.fault.key if job.fault else "clean", job.mode, result.to_json(), job.rep
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
) -> int:
    """The whole campaign; writes ``detect.md`` and ``detect.json`` into ``out``; returns the exit code."""
    out.mkdir(parents=True, exist_ok=True)
    kvm = accel == "kvm" and not kvm_problem()
    planned = plan(faults, modes, clean_runs)
    progress(f"detect: {len(planned)} runs on {image.tag} ({accel}), {jobs} at a time; results in {out}")
    outcomes = run_campaign(planned, lambda j: run_job(engine, image, j, accel, out, kvm), jobs, progress)
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
    engine = Engine.connect(progress=say)
    image = ImageRef(args.image, args.image, "") if ":" in args.image else engine.ensure_image(args.image)
    out = args.out or Path("reports") / f"detect-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    chosen = [f for f in FAULTS if f.key in faults]
    return run_detect(
        engine, image, faults=chosen, modes=modes, clean_runs=args.clean_runs, jobs=args.jobs,
        accel=args.accel, out=out, progress=say,
    )  # fmt: skip


def _chosen(option: str, given: str, known: tuple[str, ...]) -> list[str]:
    picked = [x for x in given.split(",") if x] or list(known)
    unknown = [x for x in picked if x not in known]
    if unknown:
        raise ConfigError(f"{option}: unknown {', '.join(unknown)}", hint=f"known: {', '.join(known)}")
    return [k for k in known if k in picked]
