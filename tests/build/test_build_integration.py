"""The real thing: QEMU 10.2.2 built from Debian's source package in a container, then a cache hit,
then every scenario on the binary the harness built. Needs a Docker engine; the cold build takes
about 4 minutes on 2 cores (later runs are cache hits).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BUILD_CELL = "upstream-10.2/lean"


def _record(reports: Path, run_id: str) -> dict:
    return json.loads((reports / run_id / "builds" / "upstream-10.2__lean" / "build.json").read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    done = run_harness("build", *store_args(cache_dir, reports, "first"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return reports


def test_build_record_and_binary(reports: Path, cache_dir: Path) -> None:
    record = _record(reports, "first")
    assert record["verdict"] == "pass" and record["stage"] is None
    assert record["qemu_version"].startswith("QEMU emulator version 10.2.2"), record["qemu_version"]
    assert record["source"]["digest"].startswith("sha256:") and record["source"]["version"] == "1:10.2.2+ds-1"
    assert [s["status"] for s in record["series"]["statuses"]] == ["applied"]
    assert record["image"]["id"].startswith("sha256:")
    assert "(Debian 14" in record["compiler"]  # `cc --version` of the trixie image: gcc 14
    assert record["configure"][0] == "--target-list=x86_64-softmmu"
    home = Path(record["log"]).parent
    assert (home / "artifacts" / "bin" / "qemu-system-x86_64").stat().st_size > 1_000_000
    assert (home / "reproduce.sh").read_text().startswith("#!/bin/sh")
    assert "ninja -j" in (home / "build.log").read_text()


def test_second_build_is_a_cache_hit(reports: Path, cache_dir: Path) -> None:
    done = run_harness("build", *store_args(cache_dir, reports, "second"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cache hit" in done.stdout
    first, second = _record(reports, "first"), _record(reports, "second")
    assert second["cache_hit"] is True and second["key"] == first["key"]


def test_configure_rejecting_a_flag_is_stage_configure(
    reports: Path, cache_dir: Path, tmp_path: Path
) -> None:
    matrix = tmp_path / "bad-flag.yaml"
    default = (REPO / "matrices" / "default.yaml").read_text()
    matrix.write_text(
        default.replace("      - --disable-docs\n", "      - --disable-docs\n      - --no-such-flag\n")
    )
    done = run_harness("build", "--matrix", str(matrix), *store_args(cache_dir, reports, "badflag"))
    assert done.returncode == 1
    record = _record(reports, "badflag")
    assert record["verdict"] == "fail" and record["stage"] == "configure"
    assert any("no-such-flag" in line for line in record["log_tail"])
    assert "stage configure" in done.stdout and "Traceback" not in done.stderr


def test_every_scenario_passes_on_the_built_qemu(reports: Path, cache_dir: Path) -> None:
    done = run_harness("test", *store_args(cache_dir, reports, "scenarios"), "--cells", f"{BUILD_CELL}/*/tcg")
    summary = json.loads((reports / "scenarios" / "summary.json").read_text())
    assert summary == {
        f"{BUILD_CELL}/{m}/tcg": "pass" for m in ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
    }, done.stdout[-5000:]
    assert done.returncode == 0
    result = json.loads(
        (reports / "scenarios" / "results" / "upstream-10.2__lean__cpr-exec__tcg" / "result.json").read_text()
    )
    assert result["qemu_version"]["source"].startswith("10.2.2") or "10.2.2" in json.dumps(
        result["qemu_version"]
    )
    assert {c["name"] for c in result["checks"]} >= {
        "runstates",
        "counter-serial",
        "ram-digest",
        "device-tree",
    }
