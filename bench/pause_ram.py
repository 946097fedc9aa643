#!/usr/bin/env python3
"""Pause versus guest RAM (issue 17): does each mode's pause stay flat as the guest grows?

Runs every migration mode of the built QEMU (default: upstream-10.2/lean of matrices/default.yaml) at
each guest RAM size, each cell ``--repeat`` times in its container, through the harness itself
(``python -m harness test``, one run per size). KVM where this host's KVM works, else TCG (said in the
table). Writes a table and bench/pause-vs-ram.svg into bench/RESULTS.md. Asserts nothing: this
characterises QEMU, whatever it measures.

Usage: python bench/pause_ram.py [--sizes 256,1024,4096,8192] [--repeat 3] [--accel kvm]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from harness.live.result import ScenarioResult  # noqa: E402
from harness.report import ram_chart  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
SVG = REPO / "bench" / "pause-vs-ram.svg"


def matrix_for(ram_mb: int, folder: Path) -> Path:
    text = (REPO / "matrices" / "default.yaml").read_text()
    text = text.replace("  guest_ram_mb: 256\n", f"  guest_ram_mb: {ram_mb}\n")
    text = text.replace("  step_timeout_s: 60\n", "  step_timeout_s: 300\n")  # 8 GiB normal migration
    path = folder / f"ram-{ram_mb}.yaml"
    path.write_text(text)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,4096,8192")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accel", choices=("kvm", "tcg"), default="kvm")
    parser.add_argument("--tree", default="upstream-10.2/lean")
    args = parser.parse_args()
    results: list[ScenarioResult] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cpr-bench-ram-") as tmp:
        folder = Path(tmp)
        for ram in [int(s) for s in args.sizes.split(",")]:
            run_id = f"ram-{ram:05d}"
            cells = [
                f"{args.tree}/{m}/{args.accel}" for m in ("normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
            ]
            argv = [
                sys.executable, "-m", "harness", "test", "--matrix", str(matrix_for(ram, folder)),
                "--cells", *cells,
                "--repeat", str(args.repeat), "--reports", str(folder / "reports"), "--run-id", run_id,
            ]  # fmt: skip
            print(f"guest RAM {ram} MiB ...", flush=True)
            subprocess.run(argv, cwd=REPO, check=False, stdout=subprocess.DEVNULL)
            data = json.loads((folder / "reports" / run_id / "results.json").read_text())
            for raw in data["scenarios"]:
                r = ScenarioResult.from_json(raw)
                print(f"  {r.cell_id}: {r.verdict} {r.reason[:100]}")
                results.append(r)
    series = ram_chart.series_of(results)
    SVG.write_text(ram_chart.svg(series) + "\n")
    failed = [f"{r.cell_id} ({r.timings.get('guest_ram_mb', 0):g} MiB): {r.verdict}: {r.reason[:160]}"
              for r in results if r.verdict != "pass"]  # fmt: skip
    used = sorted({r.accel_used for r in results if r.accel_used})
    section = [
        f"\n## Pause versus guest RAM, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores; {args.tree} of matrices/default.yaml, accelerator asked "
        f"{args.accel}, used {', '.join(used) or '-'}; {args.repeat} repetitions per cell, "
        f"{time.monotonic() - started:.0f} s in all. Chart: [pause-vs-ram.svg](pause-vs-ram.svg).",
        "",
        ram_chart.markdown(series),
        *([""] + [f"- not passed: {f}" for f in failed] if failed else []),
    ]
    text = "\n".join(section) + "\n"
    print(text)
    with RESULTS.open("a") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
