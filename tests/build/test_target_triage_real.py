"""Target-aware triage on a real multi-target failure (minutes: ``nox -s faults``).

QEMU 10.2.2 with a patch that makes the avr target's device config break common code: avr's
``default.mak`` sets ``CONFIG_ARDUINO=y`` and a common header tests ``#ifdef CONFIG_ARDUINO``. With
``avr-softmmu`` in the target list QEMU poisons that symbol in common code, so gcc stops at the first
common file that includes the header; without it the build passes. ``--remedy auto`` must name the
symbol and the file that sets it, then drop ``avr-softmmu`` from ``--target-list`` and build.
"""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO

from harness.build import batch
from harness.store.runs import RunStore

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.faults]

HEADER = "include/qobject/qlit.h"  # included by qobject/qlit.c, one of the first files compiled
AVR = "configs/devices/avr-softmmu/default.mak"
MATRIX = """\
trees:
  upstream-10.2:
    kind: debian-source
    image: debian-trixie
    version: "1:10.2.2+ds-1"
    patches: qemu-ds-avr
profiles:
  two:
    configure:
      - --target-list=x86_64-softmmu,avr-softmmu
      - --disable-docs
      - --disable-install-blobs
      - --disable-download
    targets: [qemu-system-x86_64]
scenarios: [boot]
"""


def _diff(tree: Path, rel: str, change) -> str:
    old = (tree / rel).read_text()
    new = change(old)
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}"))


def _patch(cache: Path) -> str:
    trees = [v.parent for v in (cache / "trees").glob("*/VERSION") if v.read_text().strip() == "10.2.2"]
    if not trees:
        pytest.skip("no unpacked QEMU 10.2.2 tree in the cache")
    guard = "\n#ifdef CONFIG_ARDUINO\n#define QLIT_ON_ARDUINO 1 /* cpr-harness test: per-target */\n#endif\n"
    return (
        "Subject: [PATCH] avr: select the Arduino boards, and test for them in common code\n\n---\n"
        + _diff(trees[0], AVR, lambda t: t + "CONFIG_ARDUINO=y\n")
        + _diff(trees[0], HEADER, lambda t: t.replace("#endif", guard + "#endif", 1))
    )


def test_a_target_whose_device_config_breaks_common_code_is_excluded(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    from harness.build.builder import Builder
    from harness.config import cells as mx
    from harness.config.matrix import load_matrix
    from harness.engine.containers import Engine

    root = tmp_path / "repo"
    (root / "matrices").mkdir(parents=True)
    (root / "containers").symlink_to(REPO / "containers")
    queue = root / "patches" / "qemu-ds-avr"
    shutil.copytree(REPO / "patches" / "qemu-ds", queue)
    (queue / "0002-avr-arduino-in-common-code.patch").write_text(_patch(cache_dir))
    with (queue / "series").open("a") as series:
        series.write("0002-avr-arduino-in-common-code.patch\n")
    (root / "matrices" / "two.yaml").write_text(MATRIX)
    builds, _ = mx.select(load_matrix(root / "matrices" / "two.yaml"), [])

    engine = Engine.connect(progress=print)
    builder = Builder(engine, cache_dir.resolve(), root / "patches", root, jobs=2, progress=print)
    store = RunStore(tmp_path / "reports" / "run")
    outcomes = batch.run_builds(builder, store, builds, "auto")
    out = capsys.readouterr().out

    records = {k: r.to_json() for k, r in store.load_builds().items()}
    first, retry = records["upstream-10.2/two"], records["upstream-10.2/two+no-avr"]
    assert first["verdict"] == "fail" and first["stage"] == "compile", json.dumps(first)[-3000:]
    found = first["triage"]
    assert found["rule"] == "target-specific", found
    assert found["cause"] == f"target avr-softmmu breaks the build ({HEADER})"
    assert "CONFIG_ARDUINO" in found["explanation"] and AVR in found["explanation"]
    assert 'poisoned "CONFIG_ARDUINO"' in found["evidence"]
    assert found["change"] == {"name": "no-avr", "add_configure": ["--target-list-exclude=avr-softmmu"]}
    assert retry["verdict"] == "pass", json.dumps(retry)[-3000:]
    assert retry["configure"][0] == "--target-list=x86_64-softmmu"
    assert retry["remedy_of"]["rule"] == "target-specific"
    assert outcomes["upstream-10.2/two"].ok
    assert "REMEDIED upstream-10.2/two -> upstream-10.2/two+no-avr" in out
