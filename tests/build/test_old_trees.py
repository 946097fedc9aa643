"""Old and exported trees end to end, on real trees available offline (minutes: ``nox -s faults``).

- Bookworm's QEMU 7.2 source package with its submodule folders deleted (an export of the git-submodule
  era): stage ``fetch`` names them; ``--remedy auto`` fills them from the store and reaches a binary;
  ``boot`` and ``normal`` pass on it, the CPR modes are ``unsupported`` in QEMU 7.2's own words.
- The 10.2.2 tree with ``subprojects/keycodemapdb`` and the berkeley folders deleted, ``--disable-download``:
  the store fills them by the revisions the wraps pin, it builds, and all five scenarios pass.

The store is fed through the CLI (``store add --matrix matrices/store.yaml``) on the shared cache.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.faults]

MODES = ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")


def _tree_of(cache: Path, version: str) -> Path:
    # git-* are checkouts of git trees (a bisection leaves one per commit it built): not the release tree
    found = [
        v.parent
        for v in (cache / "trees").glob("*/VERSION")
        if not v.parent.name.startswith("git-") and v.read_text().strip() == version
    ]
    assert found, f"no unpacked QEMU {version} tree in {cache / 'trees'}"
    return found[0]


def _feed_store(cache: Path, tree: str) -> None:
    done = run_harness(
        "store", "add", "--matrix", "matrices/store.yaml", "--trees", tree, "--cache", str(cache)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    listing = run_harness("store", "list", "--cache", str(cache))
    assert "keycodemapdb" in listing.stdout, listing.stdout


@pytest.fixture
def exports(tmp_path: Path) -> Iterator[Path]:
    """Where exported trees are copied (hundreds of MB each): removed after the test."""
    yield tmp_path / "exports"
    shutil.rmtree(tmp_path / "exports", ignore_errors=True)


def _export(src: Path, dest: Path, delete: list[str]) -> Path:
    """A copy of ``src`` as `git archive` leaves it: no .git, the given folders gone (empty)."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for rel in delete:
        shutil.rmtree(dest / rel)
        (dest / rel).mkdir()
    return dest


def _record(reports: Path, run: str, cell: str) -> dict:
    return json.loads((reports / run / "builds" / cell.replace("/", "__") / "build.json").read_text())


def test_exported_7_2_tree_gets_its_submodules_from_the_store(
    tmp_path: Path, cache_dir: Path, exports: Path
) -> None:
    _feed_store(cache_dir, "debian-7.2")
    missing = ["ui/keycodemapdb", "tests/fp/berkeley-softfloat-3", "tests/fp/berkeley-testfloat-3"]
    export = _export(_tree_of(cache_dir, "7.2.0"), exports / "qemu-7.2", missing)
    matrix = tmp_path / "export.yaml"
    matrix.write_text(f"""\
trees:
  export-7.2:
    kind: local
    image: debian-bookworm
    path: {export}
    patches: qemu-ds
profiles:
  old-lean:
    configure: [--target-list=x86_64-softmmu, --disable-docs, --disable-install-blobs]
    targets: [qemu-system-x86_64]
scenarios: [{", ".join(MODES)}]
accels: [tcg]
settings: {{guest_ram_mb: 128, step_timeout_s: 60}}
""")
    reports = tmp_path / "reports"
    plain = run_harness("build", "--matrix", str(matrix), *store_args(cache_dir, reports, "plain"))
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    first = _record(reports, "plain", "export-7.2/old-lean")
    assert first["stage"] == "fetch" and first["triage"]["rule"] == "tree-lacks-submodules", first
    assert all(m in first["triage"]["cause"] for m in missing), first["triage"]["cause"]
    assert first["triage"]["change"] == {"name": "store", "fill_subprojects": "store"}

    done = run_harness(
        "test",
        "--matrix",
        str(matrix),
        "--remedy",
        "auto",
        *store_args(cache_dir, reports, "auto"),
        timeout=2400,
    )
    retry = _record(reports, "auto", "export-7.2/old-lean+store")
    assert retry["verdict"] == "pass", json.dumps(retry)[-3000:]
    assert retry["qemu_version"].startswith("QEMU emulator version 7.2"), retry["qemu_version"]
    filled = {f["path"]: f for f in retry["source"]["filled"]}
    assert sorted(filled) == sorted(missing)
    assert {f["match"] for f in filled.values()} == {"substitute"}  # an export pins no submodule commit
    assert all(
        f["source_qemu_version"] == "7.2.0" and f["digest"].startswith("sha256:") for f in filled.values()
    )
    assert retry["source"]["unfilled_digest"] != retry["source"]["digest"]
    summary = json.loads((reports / "auto" / "summary.json").read_text())
    cell = "export-7.2/old-lean/{}/tcg"
    assert summary[cell.format("boot")] == "pass" and summary[cell.format("normal")] == "pass", done.stdout[
        -4000:
    ]
    for mode in ("cpr-reboot", "cpr-transfer", "cpr-exec"):
        assert summary[cell.format(mode)] == "unsupported"
        result = json.loads(
            (reports / "auto" / "results" / cell.format(mode).replace("/", "__") / "result.json").read_text()
        )
        assert result["reason"].startswith("7.2.0: ") and "Parameter 'mode' is unexpected" in result["reason"]
    assert done.returncode == 0, done.stdout[-3000:]


def test_10_2_without_subprojects_is_filled_by_exact_revision(
    tmp_path: Path, cache_dir: Path, exports: Path
) -> None:
    _feed_store(cache_dir, "debian-10.2")
    missing = [
        "subprojects/keycodemapdb",
        "subprojects/berkeley-softfloat-3",
        "subprojects/berkeley-testfloat-3",
    ]
    export = _export(_tree_of(cache_dir, "10.2.2"), exports / "qemu-10.2.2", missing)
    matrix = tmp_path / "filled.yaml"
    matrix.write_text(f"""\
trees:
  export-10.2:
    kind: local
    image: debian-trixie
    path: {export}
    patches: qemu-ds
    fill_subprojects: store
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu, --disable-docs, --disable-install-blobs, --disable-download]
    targets: [qemu-system-x86_64]
scenarios: [{", ".join(MODES)}]
accels: [tcg]
""")
    reports = tmp_path / "reports"
    done = run_harness("test", "--matrix", str(matrix), *store_args(cache_dir, reports, "r"), timeout=2400)
    record = _record(reports, "r", "export-10.2/lean")
    assert record["verdict"] == "pass", json.dumps(record)[-3000:]
    wraps = {p: (export / "subprojects" / f"{p.split('/')[1]}.wrap").read_text() for p in missing}
    for row in record["source"]["filled"]:
        assert row["match"] == "exact" and row["revision"] == row["wanted_revision"]
        assert f"revision = {row['revision']}" in wraps[row["path"]]
    assert sorted(r["path"] for r in record["source"]["filled"]) == sorted(missing)
    summary = json.loads((reports / "r" / "summary.json").read_text())
    assert summary == {f"export-10.2/lean/{m}/tcg": "pass" for m in MODES}, done.stdout[-4000:]
    assert done.returncode == 0
    assert not (export / "subprojects" / "keycodemapdb" / "meson.build").exists()  # the tree is untouched
