#!/usr/bin/env python3
"""Build benchmarks (issue: front door and containerized builds). Prints ratios; asserts nothing.

1. cold harness build vs a hand-run ``docker run ... configure && ninja`` of the same patched tree,
   flags and image (goal <= 1.03; both without a warm ccache);
2. cache-hit re-run vs cold (goal <= 0.01);
3. ccache-warm build of a fresh build directory vs cold (goal <= 0.35).

Usage: python bench/build_bench.py [--matrix matrices/default.yaml] [--cell upstream-10.2/lean]
Uses a fresh temporary cache (the source download is copied from the main cache when present, so the
figures measure building, not the network). Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from ratios import Figure, record  # noqa: E402


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


def hand_build(record: dict, workdir: Path) -> float:
    """What a maintainer would type: same image, same patched source, same flags, no harness."""
    sys.path.insert(0, str(REPO))
    from harness.engine.sandbox import build_user  # the uid reproduce.sh uses too

    user = build_user()
    obj = workdir / "hand-obj"
    obj.mkdir()
    os.chown(obj, user.uid, user.gid)
    inner = (
        shlex.join(["/src/configure", *record["configure"]])
        + " && "
        + shlex.join(["ninja", "-j", str(os.cpu_count() or 2), *record["targets"]])
    )
    argv = [
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        user.spec,
        "-v",
        f"{record['source_dir']}:/src:ro",
        "-v",
        f"{obj}:/build",
        "-w",
        "/build",
        "-e",
        "TEST_DIR=/build/tests-scratch",
        "-e",
        "HOME=/tmp",
        record["image"]["id"],
        "sh",
        "-c",
        inner,
    ]
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default="matrices/default.yaml")
    parser.add_argument("--cell", default="upstream-10.2/lean")
    parser.add_argument("--main-cache", type=Path, default=REPO / ".cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cpr-bench-") as tmp:
        work = Path(tmp)
        cache, reports = work / "cache", work / "reports"
        cache.mkdir()
        if (args.main_cache / "downloads").is_dir():
            shutil.copytree(args.main_cache / "downloads", cache / "downloads", symlinks=True)
        cold, cold_record = harness_build(args.matrix, args.cell, cache, reports, "cold")
        hit, _ = harness_build(args.matrix, args.cell, cache, reports, "hit")
        hand = hand_build(cold_record, work)
        shutil.rmtree(cache / "builds")  # fresh build dir, ccache kept warm
        warm, warm_record = harness_build(args.matrix, args.cell, cache, reports, "warm")
        shutil.rmtree(work / "hand-obj", ignore_errors=True)
    phases = cold_record["durations"]
    build_only = phases.get("configure_s", 0) + phases.get("build_s", 0)
    warm_hits = warm_record.get("ccache", {}).get("hit_rate_pct")
    record(
        "Build benchmarks",
        f"cell {args.cell} ({args.matrix})",
        [
            Figure("cold harness build / hand-run docker build", cold / hand, 1.03,
                   f"{cold:.0f}s / {hand:.0f}s"),
            Figure("configure+ninja phases of it / hand-run", build_only / hand, 1.03,
                   f"{build_only:.0f}s / {hand:.0f}s"),
            Figure("cache-hit re-run / cold", hit / cold, 0.01, f"{hit:.1f}s / {cold:.0f}s"),
            Figure("ccache-warm fresh build dir / cold", warm / cold, 0.35,
                   f"{warm:.0f}s / {cold:.0f}s, ccache hits {warm_hits}%"),
        ],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
