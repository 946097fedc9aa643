#!/usr/bin/env python3
"""Build benchmarks (issue: front door and containerized builds). Prints ratios; asserts nothing.

1. cold harness build vs a hand-run ``docker run`` doing the same work in the same image (fetch the
   Debian source package, unpack, patch, configure, ninja; goal <= 1.03; neither with a warm ccache);
2. cache-hit re-run vs cold (goal <= 0.01);
3. ccache-warm build of a fresh build directory vs cold (goal <= 0.35).

Usage: python bench/build_bench.py [--matrix matrices/default.yaml] [--cell upstream-10.2/lean] [--samples 3]
Each sample uses a fresh temporary cache: the harness fetches the source itself, as the hand run does
(equal work). Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from ratios import Figure, mmm, record  # noqa: E402


def harness_build(matrix: str, cell: str, cache: Path, reports: Path, run_id: str) -> tuple[float, dict]:
    started = time.monotonic()
    argv = [
        sys.executable,
        "-m",
        "harness",
        "build",
        "--matrix",
        matrix,
        "--cells",
        cell,
        "--cache",
        str(cache),
        "--reports",
        str(reports),
        "--run-id",
        run_id,
    ]
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    folder = cell.replace("/", "__")
    return elapsed, json.loads((reports / run_id / "builds" / folder / "build.json").read_text())


def hand_build(record: dict, workdir: Path, jobs: int) -> float:
    """What a maintainer would type, on equal work with the harness: in the same image, fetch the same
    Debian source package, unpack it, apply the same patch queue, configure with the same flags and
    run ninja (no ccache). Timed from the container's start to ninja's end."""
    src = record["source"]
    queue = REPO / "patches" / record["series"]["name"] if record.get("series") else None
    patches = list(record["series"]["patches"]) if queue else []
    steps = [
        "set -e",
        "cd /work",
        "apt-get -o Acquire::Check-Valid-Until=false update -qq",
        f"apt-get source --download-only -qq {shlex.quote(src['package'] + '=' + src['version'])}",
        f"tar xJf {shlex.quote(src['orig'])}",
        "cd qemu-*/",
        *[f"patch -p1 -s < /patches/{shlex.quote(p)}" for p in patches],
        "mkdir build && cd build",
        shlex.join(["../configure", *record["configure"]]) + " > /dev/null",
        shlex.join(["ninja", "-j", str(jobs), *record["targets"]]) + " > /dev/null",
    ]
    out = workdir / "hand"
    out.mkdir()
    argv = ["docker", "run", "--rm", "-v", f"{out}:/work", "-e", "TEST_DIR=/work/tests-scratch"]
    if queue is not None:
        argv += ["-v", f"{queue}:/patches:ro"]
    argv += [record["image"]["id"], "sh", "-c", "\n".join(steps)]
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--matrix", default="matrices/default.yaml")
    parser.add_argument("--cell", default="upstream-10.2/lean")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    jobs = os.cpu_count() or 2
    colds: list[float] = []
    hands: list[float] = []
    hits: list[float] = []
    warms: list[float] = []
    phases: list[float] = []
    warm_hits = None
    with tempfile.TemporaryDirectory(prefix="cpr-bench-") as tmp:
        work = Path(tmp)
        for n in range(args.samples):  # interleaved: a drift of the machine hits both sides
            cache, reports = work / f"cache-{n}", work / "reports"
            cache.mkdir()
            cold, record_ = harness_build(args.matrix, args.cell, cache, reports, f"cold-{n}")
            colds.append(cold)
            durations = record_["durations"]
            phases.append(durations.get("configure_s", 0) + durations.get("build_s", 0))
            hits.append(harness_build(args.matrix, args.cell, cache, reports, f"hit-{n}")[0])
            hands.append(hand_build(record_, work, jobs))
            shutil.rmtree(cache / "builds")  # a fresh build dir, ccache kept warm
            warm, warm_record = harness_build(args.matrix, args.cell, cache, reports, f"warm-{n}")
            warms.append(warm)
            warm_hits = warm_record.get("ccache", {}).get("hit_rate_pct")
            shutil.rmtree(cache, ignore_errors=True)
            print(f"#{n}: cold {cold:.0f} s, hand {hands[-1]:.0f} s, warm {warm:.0f} s", flush=True)
    med = statistics.median
    record(
        "Build benchmarks (equal work)",
        f"cell {args.cell} ({args.matrix}); both sides fetch the Debian source package, unpack it, apply "
        f"the patch queue, configure and run ninja -j{jobs}; the harness with a cold ccache, the hand run "
        "without",
        [
            Figure("cold harness build / hand run, equal work", med(colds) / med(hands),
                   1.03, f"{mmm(colds)} / {mmm(hands)}"),
            Figure("configure+ninja phases of it / hand-run (all of it)", med(phases) / med(hands), 1.03,
                   f"{mmm(phases)} / {mmm(hands)}"),
            Figure("cache-hit re-run / cold", med(hits) / med(colds), 0.01, f"{mmm(hits)} / {mmm(colds)}"),
            Figure("ccache-warm fresh build dir / cold", med(warms) / med(colds), 0.35,
                   f"{mmm(warms)} / {mmm(colds)}, ccache hits {warm_hits}%"),
        ],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
