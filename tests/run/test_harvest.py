"""What a scenario container writes is data (harness.run.driver.harvest): a real container plants links
and odd names in its work folder; the host copies none of them and says so in the result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.engine.containers import Engine, Mount
from harness.engine.sandbox import give_folder, scenario_user
from harness.run.driver import harvest

pytestmark = [pytest.mark.docker]

CELL = "t/p/normal/tcg"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.connect(progress=lambda line: None)


def _container_writes(engine: Engine, work: Path, script: str) -> None:
    """Run ``script`` (sh) in a real container as the scenario user, with ``work`` at /work."""
    if os.geteuid() == 0:
        give_folder(work, scenario_user())
    with engine.session(
        engine.ensure_image("debian-trixie"),
        mounts=[Mount(work, "/work")],
        user=scenario_user(),
        label="test",
    ) as box:
        done = box.exec(["sh", "-c", script], workdir="/work")
    assert done.exit_code == 0, done.output


def test_links_and_odd_names_from_the_container_are_refused(engine: Engine, tmp_path: Path) -> None:
    work, dest = tmp_path / "work", tmp_path / "dest"
    work.mkdir()
    result = {
        "cell_id": CELL, "verdict": "pass", "reason": "",
        "logs": {"serial": "serial.log", "stderr": "qemu.err", "abs": "/etc/passwd", "up": "../spec.json",
                 "qemu": "qemu.log"},
    }  # fmt: skip
    _container_writes(
        engine,
        work,
        "ln -s /etc/passwd serial.log && ln -s /etc/shadow qemu.err && echo 'QEMU says hi' > qemu.log && "
        f"cat > result.json <<'EOF'\n{json.dumps(result)}\nEOF",
    )
    r = harvest(work, CELL, "driver output\n", 0, False, dest)
    assert r.verdict == "pass"  # the cell's own verdict stands; the refusal is noted beside it
    assert "logs refused" in r.reason and "serial: refused 'serial.log': a symlink" in r.reason
    assert (
        "abs: refused file name '/etc/passwd'" in r.reason
        and "up: refused file name '../spec.json'" in r.reason
    )
    assert sorted(p.name for p in dest.iterdir()) == ["driver.log", "qemu.log"]
    assert r.logs == {"qemu": "qemu.log", "driver": "driver.log"}
    assert (dest / "qemu.log").read_text() == "QEMU says hi\n"


def test_a_symlinked_result_is_an_error_not_a_read_of_the_host(engine: Engine, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    planted = tmp_path / "planted.json"  # a valid result elsewhere on the host: it must not be read
    planted.write_text(json.dumps({"cell_id": CELL, "verdict": "pass"}))
    _container_writes(engine, work, f"ln -s {planted} result.json")
    r = harvest(work, CELL, "", 0, False, None)
    assert r.verdict == "error" and "without a result" in r.reason and "symlink" in r.reason


def test_a_result_for_another_cell_is_refused(engine: Engine, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    other = json.dumps({"cell_id": "t/p/boot/tcg", "verdict": "pass"})
    _container_writes(engine, work, f"echo '{other}' > result.json")
    r = harvest(work, CELL, "", 0, False, None)
    assert r.verdict == "error" and "not this cell" in r.reason
