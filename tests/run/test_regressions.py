"""The reverted-fix corpus (matrices/regressions.yaml, ``nox -s regressions``): QEMU 10.2.2 built with
one upstream CPR fix reverted per tree, and unreverted (the control, on the same profiles). A revert must
fail with the check that watches what its fix protects; the control must pass every cell.

Three reverts are not observable on this machine (see README, "Reverted fixes"): their cells are strict
``xfail``: the day a check catches one, the test says so (XPASS fails the session) and the table moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.qemu, pytest.mark.slow, pytest.mark.regressions]
MODES = ("cpr-transfer", "cpr-exec")
LINUX = ("virtio", "ovmf", "display")
REFUSALS = ("refuse-exec-no-command", "refuse-exec-bad-command")
# cell -> (the check that must fail, words of the cell's reason or that check's observation)
CAUGHT = {
    "revert-ded3cf4aaf7a/devices/refuse-exec-no-command/tcg": ("refusal", "QEMU died instead of refusing"),
    "revert-89471ef237ca/asan/refuse-exec-bad-command/tcg": ("sanitizers", "heap-use-after-free"),
}
# revert tree -> (machine whose device it concerns, why no check can see it here)
UNSEEN = {
    "revert-e56ba1878fef": ("ovmf", "pflash writes through to its drive: the re-read restores equal bytes"),
    "revert-b42f28111e08": (
        "virtio",
        "ROM blobs are fw_cfg files: the guest reads its own copy of the tables",
    ),
    "revert-8ffe0623a1f4": (
        "display",
        "the guest kernel has no qxl driver: ROM and rings stay as initialised",
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, dict]:
    reports = tmp_path_factory.mktemp("regressions")
    done = run_harness(
        "test", "--matrix", "matrices/regressions.yaml", "--jobs", "2",
        *store_args(cache_dir, reports, "regressions"), timeout=7200,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    data = json.loads((reports / "regressions" / "results.json").read_text())
    return {r["cell_id"]: r for r in data["scenarios"]}


def _failed(r: dict) -> dict[str, str]:
    return {c["name"]: c["observed"] for c in r["checks"] if c["verdict"] == "fail"}


CONTROL = [f"upstream-10.2/devices/{m}/{mode}/tcg" for m in LINUX for mode in MODES]
CONTROL += [f"upstream-10.2/{p}/{r}/tcg" for p in ("devices", "asan") for r in REFUSALS]


@pytest.mark.parametrize("cell", CONTROL)
def test_the_control_passes(results: dict[str, dict], cell: str) -> None:
    r = results[cell]
    assert r["verdict"] == "pass", (r["reason"], _failed(r))


@pytest.mark.parametrize("cell", list(CAUGHT))
def test_each_revert_is_caught_by_its_check(results: dict[str, dict], cell: str) -> None:
    check, words = CAUGHT[cell]
    r = results[cell]
    failed = _failed(r)
    assert r["verdict"] == "fail" and check in failed, (r["reason"], failed)
    assert words in r["reason"] + failed[check], (r["reason"], failed)


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param(f"{tree}/devices/{machine}/{mode}/tcg", marks=pytest.mark.xfail(strict=True, reason=why))
        for tree, (machine, why) in UNSEEN.items()
        for mode in MODES
    ],
)
def test_reverts_not_observable_here(results: dict[str, dict], cell: str) -> None:
    r = results[cell]
    assert r["verdict"] == "fail", (r["reason"], _failed(r))
