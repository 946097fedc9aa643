#!/usr/bin/env python3
"""Interrupt benchmark (issue 16: Ctrl-C with --jobs > 1 stops within 10 s). Prints ratios; asserts nothing.

Starts ``python -m harness test --jobs 2`` on four smoke cells, sends SIGINT as soon as two scenario
containers run, and measures the time until the command has exited (its report rendered, its containers
removed). Goal: at most 10 s, i.e. a ratio to 10 s of at most 1.0. Repeated 3 times (median).

Usage: python bench/interrupt_bench.py [--repo PATH]   (another checkout, e.g. to measure an older one)
Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from ratios import Figure, record  # noqa: E402

CELLS = [f"debian-11.1/prebuilt/{m}/tcg" for m in ("normal", "cpr-reboot", "cpr-transfer", "cpr-exec")]
GOAL_S = 10.0


def running_scenarios(pid: int) -> int:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=cpr-harness.owner-pid={pid}", "--format",
         '{{.Label "cpr-harness.what"}}'], capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return sum(1 for line in out.splitlines() if line.startswith("scenario "))


def one(repo: Path, reports: Path, run_id: str) -> float | None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "test", "--matrix", "matrices/smoke.yaml", "--jobs", "2",
         "--reports", str(reports), "--run-id", run_id, "--cells", *CELLS],
        cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # SIGINT at its default, as from a terminal, even when this bench runs in the background
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while running_scenarios(proc.pid) < 2:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            return None
        time.sleep(0.05)
    time.sleep(0.5)  # QEMU is up in both
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=600)
    return time.monotonic() - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cpr-bench-") as tmp:
        times = [t for n in range(3) if (t := one(args.repo, Path(tmp) / "reports", f"int-{n}")) is not None]
    if not times:
        print("no run reached two running cells")
        return 1
    median = statistics.median(times)
    figures = [Figure("Ctrl-C with --jobs 2: SIGINT to exit / 10 s", median / GOAL_S, 1.0,
                      f"{median:.2f}s (runs: {', '.join(f'{t:.2f}' for t in times)})")]  # fmt: skip
    record("Interrupt benchmark", f"{args.repo}, matrices/smoke.yaml, TCG, --jobs 2", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
