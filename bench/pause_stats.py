#!/usr/bin/env python3
"""The pause-regression test, measured (issue 17): its false-positive rate on synthetic samples at the
stated level, its power for known shifts, and its verdict on a real slowdown built by the harness.

1. Synthetic: pairs of samples drawn from one distribution (false positives) and from distributions
   shifted by +10, +20, +50 % (power), lognormal with the spread seen on real pauses, many trials.
2. Real: the default tree's cells, then matrices/slowdown.yaml's (a 50 ms sleep after the source
   stops the guest), then the default tree again, each with --repeat; the history of run 2 must flag
   the pause regression, the comparison of run 3 with run 1 must not.

Usage: python bench/pause_stats.py [--trials 5000] [--repeat 8] [--cells upstream-10.2/lean/normal/tcg ...]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from harness.report.stats import ALPHA, MIN_RATIO, pause_shift  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"


def synthetic(trials: int, n: int, sigma: float, shift: float, seed: int) -> float:
    rng = random.Random(seed)
    flagged = 0
    for _ in range(trials):
        before = [rng.lognormvariate(math.log(50), sigma) for _ in range(n)]
        now = [rng.lognormvariate(math.log(50 * shift), sigma) for _ in range(n)]
        flagged += (
            pause_shift(now, before).regression
            if shift > 1
            else pause_shift(now, before, min_ratio=1.0).p_value < ALPHA
        )
    return flagged / trials


def run(matrix: str, cells: list[str], repeat: int, reports: Path, run_id: str) -> dict:
    argv = [sys.executable, "-m", "harness", "test", "--matrix", matrix, "--cells", *cells,
            "--repeat", str(repeat), "--reports", str(reports), "--run-id", run_id]  # fmt: skip
    subprocess.run(argv, cwd=REPO, check=False, stdout=subprocess.DEVNULL)
    return json.loads((reports / run_id / "results.json").read_text())


def samples(results: dict) -> dict[str, list[float]]:
    out = {}
    for raw in results["scenarios"]:
        if raw.get("verdict") == "pass":
            out[raw["cell_id"]] = [x["pause_ms"] for x in raw.get("samples", []) if "pause_ms" in x]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument(
        "--cells", nargs="+", default=["upstream-10.2/lean/normal/tcg", "upstream-10.2/lean/cpr-transfer/tcg"]
    )
    args = parser.parse_args()
    rule = f"one-sided Mann–Whitney U p < {ALPHA} and median ratio >= {MIN_RATIO}"
    lines = [
        f"\n## Pause regressions: the statistical test, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Rule: {rule} (harness/report/stats.py).",
        "",
        "| n a side | sigma (lognormal) | false positives (no shift) | flagged: +10 % | +20 % | +50 % |",
        "|---|---|---|---|---|---|",
    ]
    for n in (5, 8, 12):
        for sigma in (0.1, 0.3):
            rates = [
                synthetic(args.trials, n, sigma, s, seed=n * 100 + int(sigma * 10))
                for s in (1.0, 1.1, 1.2, 1.5)
            ]
            lines.append(f"| {n} | {sigma} | " + " | ".join(f"{r:.4f}" for r in rates) + " |")
    lines += ["", f"{args.trials} trials per figure; the expected false-positive rate is at most {ALPHA}."]
    with tempfile.TemporaryDirectory(prefix="cpr-bench-stats-") as tmp:
        reports = Path(tmp) / "reports"
        base = samples(run("matrices/default.yaml", args.cells, args.repeat, reports, "1-base"))
        slow = samples(run("matrices/slowdown.yaml", args.cells, args.repeat, reports, "2-slow"))
        again = samples(run("matrices/default.yaml", args.cells, args.repeat, reports, "3-base"))
    lines += ["", f"Real slowdown (patches/qemu-ds-slow-switchover: 50 ms), --repeat {args.repeat}:", "",
              "| comparison | cell | flagged | median before -> after, p |", "|---|---|---|---|"]  # fmt: skip
    for label, now in (("slow tree vs default", slow), ("default vs default (control)", again)):
        for cell in args.cells:
            if cell not in now or cell not in base:
                lines.append(f"| {label} | {cell} | - | no samples (the cell did not pass) |")
                continue
            shift = pause_shift(now[cell], base[cell])
            lines.append(f"| {label} | {cell} | {'yes' if shift.regression else 'no'} | {shift.describe()} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
