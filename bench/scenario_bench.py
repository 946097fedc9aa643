#!/usr/bin/env python3
"""Scenario benchmarks (issue: CPR scenarios on real QEMU). Prints ratios; asserts nothing.

1. harness wall time for one cell (``python -m harness test``, container start to stored result) vs a
   bare QMP script doing the same recipe in a container of the same image (goal <= 1.2), for the modes
   the bare script covers (normal, cpr-reboot);
2. 8 scenario cells with ``--jobs 2`` vs serial on this machine (goal <= 0.6);
3. guest pause (source STOP -> destination RESUME) beside QEMU's own ``downtime``, per mode.
Uses matrices/smoke.yaml (Debian's prebuilt QEMU, TCG). Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from ratios import Figure, mmm, record  # noqa: E402

SAMPLES = 5

MATRIX = "matrices/smoke.yaml"
EIGHT = [
    f"debian-11.1/prebuilt/{m}/tcg" for m in ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
] + [f"debian-10.0/prebuilt/{m}/tcg" for m in ("normal", "cpr-reboot", "cpr-transfer")]


def harness(reports: Path, run_id: str, cells: list[str], jobs: int = 1) -> float:
    argv = [
        sys.executable,
        "-m",
        "harness",
        "test",
        "--matrix",
        MATRIX,
        "--reports",
        str(reports),
        "--run-id",
        run_id,
        "--jobs",
        str(jobs),
        "--cells",
        *cells,
    ]
    # As a user runs it: with its bytecode cached. A PYTHONDONTWRITEBYTECODE=1 in the bench's own
    # environment (some sandboxes set it) would recompile ~65 modules on every invocation (~0.1 s).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.monotonic()
    subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.monotonic() - started


def bare(image: str, mode: str, work: Path) -> float:
    firmware = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-v",
            f"{REPO}/harness/live:/opt/cpr-harness/harness/live:ro",
            "-v",
            f"{work}:/work",
            "-e",
            "PYTHONPATH=/opt/cpr-harness",
            image,
            "python3",
            "-c",
            "from pathlib import Path; from harness.live import guest; "
            "print(guest.build_firmware(Path('/work/fw')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    started = time.monotonic()
    subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--init",
            "--network",
            "none",
            "--shm-size",
            "512m",
            "-v",
            f"{REPO}/bench:/bench:ro",
            "-v",
            f"{work}:/work",
            image,
            "python3",
            "/bench/bare_qmp.py",
            mode,
            "/usr/bin/qemu-system-x86_64",
            firmware,
            "/work",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main() -> int:
    sys.path.insert(0, str(REPO))
    from harness.engine.containers import Engine

    image = Engine.connect(progress=lambda s: None).ensure_image("qemu-trixie-backports").tag
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="cpr-bench-") as tmp:
        reports = Path(tmp) / "reports"
        harness(reports, "warmup", ["debian-11.1/prebuilt/boot/tcg"])
        for mode in ("normal", "cpr-reboot"):
            cell = f"debian-11.1/prebuilt/{mode}/tcg"
            wholes, cells, theirs = [], [], []
            for n in range(SAMPLES):  # interleaved, so that a drift of the machine hits both sides
                wholes.append(harness(reports, f"{mode}-{n}", [cell]))
                folder = reports / f"{mode}-{n}" / "results" / cell.replace("/", "__")
                cells.append(json.loads((folder / "result.json").read_text())["timings"]["cell_s"])
                work = Path(tmp) / f"bare-{mode}-{n}"
                work.mkdir()
                theirs.append(bare(image, mode, work))
            base = statistics.median(theirs)
            for what, values in (
                ("harness cell (container start to stored result)", cells),
                ("whole `python -m harness test` for one cell", wholes),
            ):
                figures.append(
                    Figure(
                        f"{mode}: {what} / bare QMP script",
                        statistics.median(values) / base,
                        1.2,
                        f"{mmm(values)} / {mmm(theirs)}",
                    )
                )
        serial = harness(reports, "serial", EIGHT, jobs=1)
        parallel = harness(reports, "parallel", EIGHT, jobs=2)
        figures.append(
            Figure("8 cells --jobs 2 / serial", parallel / serial, 0.6, f"{parallel:.1f}s / {serial:.1f}s")
        )
        pauses: dict[str, list[tuple[float, float | None]]] = {}
        for run in ("serial", "parallel"):
            for result in (reports / run / "results").glob("*/result.json"):
                r = json.loads(result.read_text())
                if "pause_ms" in r.get("timings", {}):
                    pauses.setdefault(r["scenario"], []).append(
                        (r["timings"]["pause_ms"], r["timings"].get("downtime_ms"))
                    )
    extra = ["", "| mode | guest pause ms (STOP -> RESUME) | QEMU downtime ms |", "|---|---|---|"]
    for mode, values in sorted(pauses.items()):
        pause = ", ".join(f"{p:.1f}" for p, _ in values)
        down = ", ".join("-" if d is None else f"{d:.0f}" for _, d in values)
        extra.append(f"| {mode} | {pause} | {down} |")
    record("Scenario benchmarks", f"{MATRIX}, TCG", figures, extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
