"""Migration option sets on real QEMU: Debian's 10.0 and 11.1 in their containers, and the harness's own
10.2.2 build through the CLI (matrices/options.yaml). QEMU says which combinations it takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import image_tag, run_harness, store_args
from test_scenarios_real import _failed, run_in_container

MULTIFD = {"name": "multifd", "capabilities": ["multifd"], "parameters": {"multifd-channels": 2}}
MAPPED_RAM = {"name": "mapped-ram", "capabilities": ["mapped-ram"]}


def _run(tmp_path: Path, image: str, mode: str, options: dict) -> dict:
    spec = {"cell_id": f"dev/q/{options['name']}/{mode}/tcg", "scenario": mode, "migration": options}
    result, leftovers = run_in_container(image_tag(image), tmp_path, spec)
    assert leftovers == []
    return result


@pytest.mark.docker
@pytest.mark.qemu
def test_multifd_normal_migration_passes_on_11_1(tmp_path: Path) -> None:
    result = _run(tmp_path, "qemu-trixie-backports", "normal", MULTIFD)
    assert result["verdict"] == "pass", _failed(result)
    names = [s["name"] for s in result["steps"]]
    assert names.count("option set multifd") == 2  # both sides, before migrate and migrate-incoming
    sent = [r for r in result["qmp"] if "multifd-channels" in json.dumps(r)]
    assert sent, "the parameter never reached QEMU"


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize(("image", "version"), [("qemu-trixie", "10.0"), ("qemu-trixie-backports", "11.1")])
def test_mapped_ram_over_a_socket_is_unsupported_in_qemus_words(
    tmp_path: Path, image: str, version: str
) -> None:
    result = _run(tmp_path, image, "cpr-transfer", MAPPED_RAM)
    assert result["verdict"] == "unsupported", _failed(result)
    assert result["reason"].startswith(version)
    assert "option set 'mapped-ram' (mapped-ram) refused by the source's migrate:" in result["reason"]
    assert "Migration requires seekable transport" in result["reason"]  # QEMU's text, not ours


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.slow
def test_option_sets_and_a_refusal_on_the_built_10_2_2(tmp_path: Path, cache_dir: Path) -> None:
    cells = {
        "upstream-10.2/lean/multifd/cpr-transfer/tcg": "pass",
        "upstream-10.2/lean/zero-page-none/cpr-exec/tcg": "pass",
        "upstream-10.2/lean/multifd/cpr-exec/tcg": "unsupported",
        "upstream-10.2/lean/refuse-exec-bad-command/tcg": "pass",
    }
    done = run_harness(
        "test", "--matrix", "matrices/options.yaml", "--cells", *cells, "--jobs", "2",
        *store_args(cache_dir, tmp_path / "reports", "options"),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "reports" / "options" / "results.json").read_text())
    got = {r["cell_id"]: r for r in results["scenarios"]}
    assert {c: got[c]["verdict"] for c in cells} == cells, {c: got[c]["reason"] for c in cells}
    multi = got["upstream-10.2/lean/multifd/cpr-exec/tcg"]["reason"]
    assert (
        multi.startswith("10.2.2: option set 'multifd'") and "Migration requires multi-channel URIs" in multi
    )
    assert got["upstream-10.2/lean/multifd/cpr-transfer/tcg"]["migration"] == "multifd"
