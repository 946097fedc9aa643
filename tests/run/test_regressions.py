"""The reverted-fix corpus (matrices/regressions.yaml, ``nox -s regressions``): QEMU 10.2.2 built four
times, with one upstream CPR fix reverted each time and once unreverted (the control). Each revert must
fail with the check that watches what its fix protects, on the machine profile with the device; the
control must pass every cell. Minutes of builds (ccache helps) and ~25 Linux-guest cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.qemu, pytest.mark.slow, pytest.mark.regressions]
MODES = ("cpr-transfer", "cpr-exec")
# revert tree -> (machine profile that exposes it, the check that fails there)
CAUGHT = {
    "revert-e56ba1878fef": ("ovmf", "device-memory"),  # pflash: the flash re-read from its drive
    "revert-b42f28111e08": ("virtio", "device-memory"),  # hw/loader: ROM blobs (ACPI tables) rewritten
    "revert-8ffe0623a1f4": ("display", "device-memory"),  # hw/qxl: ROM and RAM header re-initialised
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, dict]:
    reports = tmp_path_factory.mktemp("regressions")
    done = run_harness(
        "test", "--matrix", "matrices/regressions.yaml", "--jobs", "2",
        *store_args(cache_dir, reports, "regressions"), timeout=5400,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    data = json.loads((reports / "regressions" / "results.json").read_text())
    return {r["cell_id"]: r for r in data["scenarios"]}


def _failed(r: dict) -> dict[str, str]:
    return {c["name"]: c["observed"] for c in r["checks"] if c["verdict"] == "fail"}


@pytest.mark.parametrize("machine", ["virtio", "ovmf", "display"])
@pytest.mark.parametrize("mode", MODES)
def test_the_control_passes(results: dict[str, dict], machine: str, mode: str) -> None:
    r = results[f"upstream-10.2/devices/{machine}/{mode}/tcg"]
    assert r["verdict"] == "pass", (r["reason"], _failed(r))


@pytest.mark.parametrize("tree", list(CAUGHT))
@pytest.mark.parametrize("mode", MODES)
def test_each_revert_is_caught_by_its_check(results: dict[str, dict], tree: str, mode: str) -> None:
    machine, check = CAUGHT[tree]
    r = results[f"{tree}/devices/{machine}/{mode}/tcg"]
    assert r["verdict"] == "fail", (r["reason"], _failed(r))
    assert check in _failed(r), (r["reason"], _failed(r))
