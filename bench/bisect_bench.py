#!/usr/bin/env python3
"""Bisection benchmark (issue: from a red cell to the commit that broke it). Prints ratios; asserts nothing.

Mean time per bisection step (its build and the cell's runs) as a ratio to a cold build of the same tree
(goal <= 0.25), on the synthetic history of tests/bisect/test_bisect_real.py: QEMU 10.2.2 and 43 commits
(a real bug at 28, a commit that does not build at 32, a flaky one at 26), made afresh (new commit ids).

- the bisection runs with the given cache (its ccache warm, as on a machine that builds nightly);
- the cold build is the same tree at the bad commit, built by the harness with an empty cache (no ccache
  entries, no build directory), as the build benchmark measures it.

Usage: python bench/bisect_bench.py [--cache .cache] [--runs 3] [--cell synthetic/lean/cpr-transfer/tcg]
                                   [--keep DIR] (keep the bisection's run folder and the command's output)
Appends a section to bench/RESULTS.md. Takes about 15 minutes on 2 cores (5 of them the cold build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
from bisectkit import make_history, plan_with, remove_cache_entries  # noqa: E402
from ratios import Figure, mmm, record  # noqa: E402


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, text=True, capture_output=True)


def qemu_tree(cache: Path) -> Path:
    from harness.build.sources import fetch_tree
    from harness.config.matrix import load_matrix
    from harness.config.repo import DEFAULT_MATRIX
    from harness.engine.containers import Engine

    tree = load_matrix(DEFAULT_MATRIX).trees["upstream-10.2"]
    engine = Engine.connect(progress=lambda _: None)
    found = fetch_tree("upstream-10.2", tree, cache, engine=engine, progress=lambda _: None)
    assert found.path is not None
    return found.path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("CPR_HARNESS_CACHE", REPO / ".cache"))
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cell", default="synthetic/lean/cpr-transfer/tcg")
    parser.add_argument("--keep", type=Path, default=None, help="copy the bisection's reports folder here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "bisect"))
    from test_bisect_real import BROKEN_AT, BUG, BUG_AT, FLAKY_AT, MATRIX, TOTAL

    cache = args.cache.resolve()
    with tempfile.TemporaryDirectory(prefix="cpr-bench-bisect-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        plan = plan_with(TOTAL, BUG_AT, BUG[0], BUG[1], broken_at=BROKEN_AT, flaky_at=FLAKY_AT)
        history = make_history(qemu_tree(cache), work, plan, salt=uuid.uuid4().hex)
        made = time.monotonic() - t0
        matrix = work / "synthetic.yaml"
        matrix.write_text(MATRIX.format(url=history.work))
        reports = work / "reports"
        t0 = time.monotonic()
        where = ["--cache", str(cache), "--reports", str(reports)]
        done = harness("bisect", "--matrix", str(matrix), "--cell", args.cell, "--good", history.commits[0],
                       "--bad", "master", "--runs", str(args.runs), *where)  # fmt: skip
        wall = time.monotonic() - t0
        [path] = list(reports.glob("bisect/*/bisect/*/bisect.json"))
        bisection = json.loads(path.read_text())
        records = [json.loads(p.read_text()) for p in reports.glob("**/steps/*/builds/*/build.json")]
        built = [{"key": (r.get("key") or "")[:16], "source_dir": r.get("source_dir") or ""} for r in records]
        remove_cache_entries(cache, built, str(history.work))
        print(done.stdout[-2000:], done.stderr[-2000:], flush=True)
        if args.keep is not None:
            shutil.copytree(reports, args.keep / "reports", symlinks=True, dirs_exist_ok=True)
            (args.keep / "bisect.out").write_text(done.stdout + done.stderr)

        cold_cache = work / "cold-cache"
        cold_cache.mkdir()
        t0 = time.monotonic()
        cold_run = harness("build", "--matrix", str(matrix), "--cells", args.cell.rsplit("/", 2)[0],
                           "--cache", str(cold_cache), "--reports", str(work / "cold-reports"))  # fmt: skip
        cold = time.monotonic() - t0
        assert cold_run.returncode == 0, cold_run.stdout[-2000:] + cold_run.stderr[-2000:]
        shutil.rmtree(cold_cache, ignore_errors=True)

    steps = bisection["steps"]
    seconds = [s["seconds"] for s in steps]
    builds = [s["build"].get("seconds", 0.0) for s in steps]
    seeded = [s["seconds"] for s in steps if s["build"].get("incremental", {}).get("used")]
    fresh = [s["seconds"] for s in steps if not s["build"].get("incremental", {}).get("used")]
    mean = statistics.mean(seconds)
    outcomes = ", ".join(f"{s['commit']['commit'][:7]} {s['outcome']}" for s in steps)
    answer = (bisection.get("first_bad") or {}).get("commit", "")[:12]
    record(
        "Bisection benchmark",
        f"synthetic history of tests/bisect/test_bisect_real.py ({TOTAL} commits after QEMU 10.2.2), cell "
        f"{args.cell}, {args.runs} runs per step, ccache warm; cold build: the same tree at the bad commit "
        "with an empty cache",
        [
            Figure(
                "mean time per bisection step / cold build of the tree",
                mean / cold,
                0.25,
                f"{mean:.1f}s / {cold:.0f}s ({len(steps)} steps)",
            ),
            Figure(
                "mean time per step that started from an earlier build directory / cold build",
                statistics.mean(seeded) / cold if seeded else float("nan"),
                0.25,
                f"{mmm(seeded)} / {cold:.0f}s" if seeded else "none",
            ),
        ],  # fmt: skip
        [
            "",
            f"Answer: {bisection['status']} {answer} (planted bug: {history.commit('bug')[:12]}); "
            f"{len(steps)} steps: {outcomes}.",
            f"Builds per step {mmm(builds)}; steps without a seed (the bad end: a fresh build directory, "
            f"ccache warm): {', '.join(f'{x:.1f}s' for x in fresh)}; whole bisection {wall:.0f}s; "
            f"history made in {made:.0f}s.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
