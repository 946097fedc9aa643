"""The matrices shipped in matrices/ load against the repository and expand as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from matrixkit import ids

from harness.config import cells as mx
from harness.config.matrix import load_matrix

# --- the shipped matrices ----------------------------------------------------------------------------


@pytest.fixture
def shipped_root(tmp_path: Path) -> Path:
    """The real images and patch folders, plus debian-bookworm (nightly.yaml) even before it exists."""
    images = {p.parent.name for p in (REPO / "containers").glob("*/Dockerfile")} | {"debian-bookworm"}
    for image in images:
        (tmp_path / "containers" / image).mkdir(parents=True)
        real = REPO / "containers" / image / "Dockerfile"
        first = real.read_text().splitlines()[0] if real.is_file() else ""  # keeps the image lineage
        (tmp_path / "containers" / image / "Dockerfile").write_text(first + "\n")
    for name in {p.name for p in (REPO / "patches").glob("*") if p.is_dir()} | {"qemu-ds"}:
        (tmp_path / "patches" / name).mkdir(parents=True)
    return tmp_path


def test_default_matrix(shipped_root: Path) -> None:
    m = load_matrix(REPO / "matrices" / "default.yaml", repo_root=shipped_root)
    assert ids(mx.build_cells(m)) == ["upstream-10.2/lean", "debian-10.0/prebuilt"]
    cells = ids(mx.scenario_cells(m))
    assert len(cells) == 5 * 2 + 4  # upstream: every mode on tcg and kvm; the 10.0 -> 10.2 upgrade on tcg
    assert not [c for c in cells if c.startswith("debian-10.0/")]  # excluded: only the upgrade uses it
    assert "upgrade/debian-10.0-to-upstream-10.2/cpr-transfer/tcg" in cells
    tree = m.trees["upstream-10.2"]
    assert (tree.kind, tree.version, tree.package, tree.patches) == (
        "debian-source",
        "1:10.2.2+ds-1",
        "qemu",
        "qemu-ds",
    )
    assert m.profiles["lean"].targets == ["qemu-system-x86_64"]


def test_smoke_matrix_against_real_repo() -> None:
    m = load_matrix(REPO / "matrices" / "smoke.yaml")  # only images that exist in the repo
    assert ids(mx.build_cells(m)) == ["debian-10.0/prebuilt", "debian-11.1/prebuilt"]
    assert len(mx.scenario_cells(m)) == 2 * 5 and m.accels == ["tcg"]


def test_nightly_matrix(shipped_root: Path) -> None:
    m = load_matrix(REPO / "matrices" / "nightly.yaml", repo_root=shipped_root)
    builds, scens = mx.build_cells(m), mx.scenario_cells(m)
    assert len(builds) == 15  # issue 15: distro profile on the openEuler lines, bookworm's 7.2
    assert "openeuler-8.2/openeuler" in ids(builds) and "upstream-10.2.0/werror" in ids(builds)
    assert not [
        s for s in scens if s.build.tree_name.startswith("openeuler") and s.scenario == "cpr-transfer"
    ]
    assert not [s for s in scens if s.build.profile_name == "werror" and s.scenario.startswith("cpr-")]
    ups = [s for s in scens if s.target is not None]
    assert len(ups) == 4 * 2 + 1 * 2 and ups[0].id == "upgrade/release-to-master/normal/tcg"
    assert len(scens) == 90 + 4 * 2 + 2 * 4 * 2 + 2 * 5 * 2  # + openeuler distro cells, debian-7.2
    for name in ("openeuler-8.2", "openeuler-6.2"):  # exports are filled offline, in the distro-like image
        assert m.trees[name].fill_subprojects == "store" and m.trees[name].image == "debian-bookworm-distro"
    assert "--enable-bpf" in m.profiles["distro"].configure
    assert m.trees["openeuler-24.03-src"].patches == "src-openeuler-qemu-24.03"
    assert m.trees["upstream-10.2.0"].sha256 and len(m.trees["upstream-10.2.0"].sha256 or "") == 64
    seed = m.profiles["openeuler"].configure
    assert "--disable-werror" in seed and "--target-list-exclude=loongarch64-softmmu" in seed
    builds, scens = mx.select(m, ["upgrade/release-to-master/*"])
    assert ids(builds) == ["upstream-10.2.0/lean", "upstream-master/lean"]


@pytest.mark.parametrize("name", ["default", "smoke", "nightly", "store"])
def test_shipped_matrices_load_against_the_real_repo(name: str) -> None:
    if name == "nightly" and not (REPO / "containers" / "debian-bookworm" / "Dockerfile").is_file():
        pytest.skip("containers/debian-bookworm is not in the repository yet")
    m = load_matrix(REPO / "matrices" / f"{name}.yaml")
    builds, scens = mx.select(m, [])
    assert builds and scens and m.repo_root == REPO


def test_docs_complete_example_expands_as_documented(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "matrix.md").read_text()
    example = doc.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    root = tmp_path / "repo"
    for image in ("debian-trixie", "qemu-trixie-backports"):
        (root / "containers" / image).mkdir(parents=True)
        (root / "containers" / image / "Dockerfile").write_text("\n")
    (root / "matrices").mkdir()
    (tmp_path / "qemu").mkdir()  # path: ../../qemu from repo/matrices/
    (root / "matrices" / "example.yaml").write_text(example)
    m = load_matrix(root / "matrices" / "example.yaml")
    builds, scens = mx.build_cells(m), mx.scenario_cells(m)
    assert ids(builds) == [
        "upstream-10.2.0/lean",
        "upstream-master/lean",
        "my-work/lean",
        "debian-11.1/prebuilt",
    ]
    assert len([s for s in scens if s.target is None]) == 35 and len([s for s in scens if s.target]) == 8


def test_options_matrix(shipped_root: Path) -> None:
    m = load_matrix(REPO / "matrices" / "options.yaml", repo_root=shipped_root)
    assert list(m.migration) == ["default", "mapped-ram", "multifd", "zero-page-none"]
    assert m.migration["zero-page-none"].parameters == {"zero-page-detection": "none"}
    cells = ids(mx.scenario_cells(m))
    assert len(cells) == 3 * (4 * 4 + 12)  # three QEMUs: four modes under four sets, twelve refusals
    assert "upstream-10.2/lean/cpr-exec/tcg" in cells  # the default set keeps the ids of default.yaml
    assert "debian-10.0/prebuilt/mapped-ram/cpr-transfer/tcg" in cells
    assert "debian-11.1/prebuilt/refuse-transfer-file-channel/tcg" in cells


def test_sanitizers_matrix(shipped_root: Path) -> None:
    m = load_matrix(REPO / "matrices" / "sanitizers.yaml", repo_root=shipped_root)
    assert ids(mx.build_cells(m)) == ["upstream-10.2/asan", "upstream-10.2/ubsan"]
    assert (
        "--enable-asan" in m.profiles["asan"].configure and "--enable-ubsan" in m.profiles["ubsan"].configure
    )
    assert len(mx.scenario_cells(m)) == 2 * (5 + 3)


def test_regressions_matrix(shipped_root: Path) -> None:
    m = load_matrix(REPO / "matrices" / "regressions.yaml", repo_root=shipped_root)
    reverts = [t for t in m.trees if t.startswith("revert-")]
    assert len(reverts) == 5
    for name in reverts:  # each queue: patches/qemu-ds, then the revert of the fix named by the tree
        queue = REPO / "patches" / str(m.trees[name].patches)
        series = [ln for ln in (queue / "series").read_text().splitlines() if ln and not ln.startswith("#")]
        assert series[0] == "0001-pc-bios-skip-unpack-edk2-blobs.patch"
        assert (queue / series[0]).read_text() == (REPO / "patches/qemu-ds" / series[0]).read_text()
        assert series[1] == f"0002-{name}.patch" and (queue / series[1]).is_file()
