"""Detection power: seeded live-update bugs must be caught, clean runs must stay green.

``python -m harness.detect [--image NAME-or-TAG] [--clean-runs 20] [--jobs 2] [--out DIR]`` (or
``nox -s detect``) runs every fault class (the test-only fields of
:class:`~harness.scenarios.ScenarioSpec`) against every mode it applies to, on real QEMU in containers
of the run image, and prints a table class x mode -> caught (by which check) or MISSED. Then it runs
every mode ``--clean-runs`` times without a fault: any verdict but ``pass`` is a false alarm.

Exit status: 0 every applicable fault was caught by its expected check and there was no false alarm,
1 otherwise, 3 when the Docker engine or the image is unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODES = ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
MIGRATIONS = MODES[1:]
IN_CONTAINER_ROOT = "/opt/cpr-harness"
PACKAGE_DIR = Path(__file__).resolve().parent
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


def spec_for(job: Job, accel: str, default_timeout: float = 60.0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cell_id": f"detect/{job.name}/{accel}",
        "scenario": job.mode,
        "accel": accel,
        "workdir": "/work",
        "step_timeout_s": job.fault.step_timeout_s if job.fault else default_timeout,
    }
    if job.fault:
        spec.update(job.fault.spec)
    return spec


def run_job(engine: Any, image: Any, job: Job, accel: str, out: Path | None, kvm: bool) -> Outcome:
    """Run one scenario in a fresh container of ``image``; keep its result and logs under ``out``."""
    from harness.containers import Mount  # host-only import (docker SDK)

    work = Path(tempfile.mkdtemp(prefix="cpr-detect-"))
    os.chmod(work, 0o700)
    spec = spec_for(job, accel)
    (work / "spec.json").write_text(json.dumps(spec, indent=2))
    (work / STRAY_DISK).write_bytes(b"\0" * 65536)
    started = time.monotonic()
    try:
        with engine.session(
            image,
            mounts=[Mount(PACKAGE_DIR, f"{IN_CONTAINER_ROOT}/harness", read_only=True), Mount(work, "/work")],
            user="0:0",
            env={"PYTHONPATH": IN_CONTAINER_ROOT, "PYTHONDONTWRITEBYTECODE": "1"},
            devices=["/dev/kvm:/dev/kvm:rwm"] if kvm else [],
            shm_size="768m",
            label=f"detect {job.name}",
        ) as box:
            run = box.exec(
                ["python3", "-m", "harness.scenarios", "/work/spec.json", "/work/result.json"],
                workdir="/work",
                timeout=spec["step_timeout_s"] * 12 + 120,
            )
        try:
            result = json.loads((work / "result.json").read_text())
        except (OSError, ValueError) as exc:
            why = "timed out" if run.timed_out else f"exited {run.exit_code}"
            result = {
                "verdict": "error",
                "reason": f"driver {why} without a result ({exc}): {run.output[-300:]}",
            }
        if out is not None:
            keep = out / job.name.replace("/", "__")
            keep.mkdir(parents=True, exist_ok=True)
            for f in work.iterdir():
                if f.suffix in (".json", ".jsonl", ".log") and f.is_file():
                    shutil.copy2(f, keep / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outcome = outcome_from_result(job.fault.key if job.fault else "clean", job.mode, result, job.rep)
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


def _kvm_usable() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.detect", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--image",
        default="qemu-trixie-backports",
        help="harness image name (containers/<name>) or an existing tag (name:tag)",
    )
    p.add_argument("--clean-runs", type=int, default=20, help="clean repetitions per mode (default 20)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1)")
    p.add_argument(
        "--out", type=Path, default=None, help="folder for results (default reports/detect-<time>)"
    )
    p.add_argument("--faults", default=",".join(FAULT_KEYS), help="comma-separated fault keys")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    p.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    args = p.parse_args(argv)  # fmt: skip
    for name, given, known in (("--faults", args.faults, FAULT_KEYS), ("--modes", args.modes, MODES)):
        unknown = [x for x in given.split(",") if x and x not in known]
        if unknown:
            p.error(f"{name}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from harness.containers import Engine, ImageRef
    from harness.errors import HarnessError

    keys = [k for k in args.faults.split(",") if k]
    faults = [f for f in FAULTS if f.key in keys]
    modes = [m for m in MODES if m in args.modes.split(",")]
    out = args.out or Path("reports") / f"detect-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    kvm = args.accel == "kvm" and _kvm_usable()
    try:
        engine = Engine.connect(progress=print)
        image = ImageRef(args.image, args.image, "") if ":" in args.image else engine.ensure_image(args.image)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    jobs = plan(faults, modes, args.clean_runs)
    print(f"detect: {len(jobs)} runs on {image.tag} ({args.accel}), {args.jobs} at a time; results in {out}")
    outcomes = run_campaign(jobs, lambda j: run_job(engine, image, j, args.accel, out, kvm), args.jobs)
    text = report(faults, outcomes, image.tag, args.accel if kvm or args.accel == "tcg" else "tcg")
    (out / "detect.md").write_text(text + "\n")
    (out / "detect.json").write_text(json.dumps([o.to_json() for o in outcomes], indent=2) + "\n")
    print("\n" + text)
    return 1 if problems(faults, outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
