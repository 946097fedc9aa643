"""Refusal scenarios on real QEMU, and against a QEMU that does not refuse: a wrapper around the real
binary (tests/data/fake-qemu-refusal) that crashes, hangs or reports success when told to migrate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DATA, image_tag
from test_scenarios_real import _failed, run_in_container

WRAPPER = DATA / "fake-qemu-refusal" / "qemu-wrapper"


def _run(tmp_path: Path, image: str, refusal: str, **spec: object) -> tuple[dict, list[str]]:
    return run_in_container(
        image_tag(image), tmp_path, {"cell_id": f"dev/q/{refusal}/tcg", "scenario": refusal, **spec}
    )


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize("refusal", ["refuse-exec-no-command", "refuse-transfer-file-channel"])
def test_qemu_11_1_refuses(tmp_path: Path, refusal: str) -> None:
    result, leftovers = _run(tmp_path, "qemu-trixie-backports", refusal)
    assert result["verdict"] == "pass", _failed(result)
    check = next(c for c in result["checks"] if c["name"] == "refusal")
    assert check["verdict"] == "pass" and check["observed"]  # QEMU's own words
    assert leftovers == []


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.faults
@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("crash", "QEMU died instead of refusing"),
        ("hang", "QEMU hung instead of refusing"),
        ("success", "QEMU reported success instead of refusing"),
    ],
)
def test_a_qemu_that_does_not_refuse_fails(tmp_path: Path, how: str, words: str) -> None:
    shutil.copy(WRAPPER, tmp_path / f"qemu-{how}")
    (tmp_path / f"qemu-{how}").chmod(0o755)
    spec = {"src_qemu": f"/work/qemu-{how}", "step_timeout_s": 5}
    result, leftovers = _run(tmp_path, "qemu-trixie-backports", "refuse-exec-no-command", **spec)
    assert result["verdict"] == "fail", _failed(result)
    assert result["reason"].startswith(words), result["reason"]
    if how == "crash":
        assert "SIGSEGV" in result["reason"]
    assert leftovers == []
