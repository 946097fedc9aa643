"""Bisection for real: a synthetic history made here from the real QEMU 10.2.2 tree, every step built in
its container and its cell run on real QEMU three times.

The history (see :mod:`bisectkit`): commit 0 is 10.2.2 (with patches/qemu-ds), then 43 commits: harmless
ones (a comment in a different C file each), the real bug at 28 (:data:`BUG`), a commit that does not
build at 32 (fixed at 33), and a flaky one at 26 (undone at 27): its QEMU fails the first migration
started in a container and works afterwards, so the three runs of its step disagree, whatever the timing.
``git bisect`` cannot avoid the flaky and the broken commit on the way to 28 (test_gitrepo.py shows the
walk, the same for any commit ids).

Then the upgrade cell of the same history (issue item 3): QEMU 10.2.2 of the default matrix stays the
source, the synthetic tree is the target, bisected from commit 24 to the bug (4 commits).

Runs in its own session, ``nox -s bisection`` (marker ``bisection``; not in CI's ``selftest``/``faults``;
4.5 minutes here with a warm ccache): 8 builds of the scenario cell (7 of them incremental), cache hits for
the upgrade cell, 3 runs per step. What it adds to the shared cache (builds, checkouts, the mirror) is
removed at the end.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest
from bisectkit import make_history, plan_with, remove_cache_entries
from conftest import DATA, run_harness

from harness.store.bisect_record import BisectRecord

# The real bug the history brings back: (the patch, its subject, the cell that catches it). Why this one
# and not a reverted upstream fix of the regression corpus: the patch's own header.
BUG = (
    DATA / "bisect" / "hostmem-memfd-revert-preserve-for-cpr.patch",
    "hostmem-memfd: no cpr: the new QEMU maps a fresh memfd for guest RAM",
    "synthetic/lean/cpr-transfer/tcg",
)
TOTAL, BUG_AT, BROKEN_AT, FLAKY_AT = 43, 28, 32, 26

MATRIX = """\
trees:
  synthetic:
    kind: git
    description: QEMU 10.2.2 and 43 commits made by tests/bisect/test_bisect_real.py
    url: {url}
    ref: master
    image: debian-trixie
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu, --disable-docs, --disable-install-blobs, --disable-download]
    targets: [qemu-system-x86_64]
scenarios: [normal, cpr-reboot, cpr-transfer, cpr-exec]
accels: [tcg]
"""

# The upgrade pair: QEMU 10.2.2 of the default matrix (the same tree, so the same build key: a cache hit
# where the default matrix was built) is the fixed source, the synthetic tree the bisected target.
SOURCE_TREE = """\
  upstream-10.2:
    kind: debian-source
    description: QEMU 10.2.2 as in matrices/default.yaml
    image: debian-trixie
    package: qemu
    version: "1:10.2.2+ds-1"
    patches: qemu-ds
"""
UPGRADES = """\
upgrades:
  to-synthetic:
    source: upstream-10.2/lean
    target: synthetic/lean
    scenarios: [cpr-transfer]
    accels: [tcg]
"""
UPGRADE_CELL = "upgrade/to-synthetic/cpr-transfer/tcg"

pytestmark = [pytest.mark.bisection, pytest.mark.slow, pytest.mark.docker, pytest.mark.qemu]


def built_entries(run: Path) -> list[dict[str, str]]:
    """Build keys and source folders of every step of the bisections under ``run`` (for the clean-up)."""
    out = []
    for path in run.glob("**/steps/*/builds/*/build.json"):
        record = json.loads(path.read_text())
        out.append({"key": (record.get("key") or "")[:16], "source_dir": record.get("source_dir") or ""})
    return out


def the_record(reports: Path) -> tuple[BisectRecord, Path]:
    [path] = list((reports / "bisect").glob("*/bisect/*/bisect.json"))
    return BisectRecord.from_json(json.loads(path.read_text())), path.parent


def test_bisection_names_the_planted_commit(tmp_path: Path, qemu_10_2_tree: Path, cache_dir: Path) -> None:
    patch, subject, cell = BUG
    plan = plan_with(TOTAL, BUG_AT, patch, subject, broken_at=BROKEN_AT, flaky_at=FLAKY_AT)
    history = make_history(qemu_10_2_tree, tmp_path, plan, salt=uuid.uuid4().hex)
    matrix = tmp_path / "synthetic.yaml"
    matrix.write_text(MATRIX.format(url=history.work))
    reports = tmp_path / "reports"
    good = history.commits[0]
    common = ["--matrix", str(matrix), "--cell", cell, "--cache", str(cache_dir), "--reports", str(reports)]
    try:
        done = run_harness("bisect", *common, "--good", good, "--bad", "master", timeout=3600)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr
        record, folder = the_record(reports)

        # the answer: the planted commit, with the check that caught it
        assert record.status == "found" and record.first_bad is not None
        assert record.first_bad.commit == history.commit("bug"), record.summary()
        assert record.first_bad.subject == subject and record.first_bad_check
        assert record.commits == TOTAL

        by_commit = {s.commit.commit: s for s in record.steps}
        # the broken commit was skipped, its triage recorded; the flaky one was not blamed
        broken = by_commit[history.commit("broken")]
        assert broken.outcome == "broken" and broken.build["verdict"] == "fail"
        assert broken.build["stage"] == "compile" and "triage" in broken.build
        flaky = by_commit[history.commit("flaky")]
        assert flaky.outcome == "flaky" and flaky.runs == ["fail", "pass", "pass"]
        assert (
            "first migration in a container"
            in (folder / flaky.folder / "results").glob("*/result.json").__next__().read_text()
        )
        assert by_commit[history.commit("bug")].outcome == "bad"

        # at most ceil(log2 N) + 2 builds: git's steps, plus the check of bad itself
        chosen = [s for s in record.steps if s.role == "step"]
        assert len(chosen) <= math.ceil(math.log2(TOTAL)) + 2 - 1
        assert record.builds() <= math.ceil(math.log2(TOTAL)) + 2

        # steps after the first start from an earlier step's build directory, without configure
        seeded = [s for s in record.steps[1:] if s.build.get("incremental", {}).get("used")]
        assert len(seeded) >= len(record.steps) - 2, [s.build.get("incremental") for s in record.steps]
        assert all(s.build["incremental"]["configure"] == "skipped" for s in seeded)

        # the page, linked from the run's dashboard
        page = (folder / "index.html").read_text()
        assert record.first_bad.commit in page and "flaky" in page and "broken" in page
        dashboard = (folder.parent.parent / "index.html").read_text()
        assert f"bisect/{folder.name}/index.html" in dashboard

        # bad input that only a build can reveal: the cell passes at --bad (the commit before the bug)
        before_bug = history.commits[BUG_AT - 1]
        again = run_harness("bisect", *common, "--good", good, "--bad", before_bug, timeout=1800)
        assert again.returncode == 2, again.stdout[-3000:] + again.stderr
        assert "passes at --bad" in again.stderr and "nothing to bisect" in again.stderr
        assert "Traceback" not in again.stderr

        # the upgrade cell: 10.2.2 stays the source, the synthetic tree is bisected as the target
        upgrade = tmp_path / "upgrade.yaml"
        upgrade.write_text(
            MATRIX.format(url=history.work).replace("profiles:", SOURCE_TREE + "profiles:") + UPGRADES
        )
        up_reports = tmp_path / "up-reports"
        first_good = history.commits[BUG_AT - 4]
        up = run_harness(
            "bisect", "--matrix", str(upgrade), "--cell", UPGRADE_CELL, "--cache", str(cache_dir),
            "--reports", str(up_reports), "--good", first_good, "--bad", history.commit("bug"),
            timeout=3600,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr
        up_record, up_folder = the_record(up_reports)
        assert up_record.kind == "upgrade" and up_record.tree == "synthetic" and up_record.commits == 4
        assert up_record.first_bad is not None and up_record.first_bad.commit == history.commit("bug")
        assert up_record.first_bad_check, up_record.summary()
        # the source stayed the 10.2.2 build; each step built the synthetic tree at its commit and ran the
        # upgrade cell (old QEMU: the source build, new QEMU: the step's)
        assert up_record.fixed["cell"] == "upstream-10.2/lean" and up_record.fixed["key"], up_record.fixed
        assert up_record.fixed["qemu_version"].endswith("10.2.2"), up_record.fixed
        for step in up_record.steps:
            assert step.build["key"] != up_record.fixed["key"]
            results = list((up_folder / step.folder / "results").glob("*/result.json"))
            assert [json.loads(r.read_text())["cell_id"] for r in results] == [UPGRADE_CELL]
        assert "the upgrade's source stays" in (up_folder / "index.html").read_text()
    finally:
        entries = built_entries(reports) + built_entries(tmp_path / "up-reports")
        remove_cache_entries(cache_dir, entries, str(history.work))
