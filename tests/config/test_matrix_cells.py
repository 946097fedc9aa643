"""Expanding a matrix into cells (exclude, include, upgrades) and selecting cells by pattern."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrixkit import BASE, ids, line, load_error, write

from harness.config import cells as mx
from harness.config import images
from harness.config.matrix import load_matrix
from harness.errors import ConfigError
from harness.live.vocab import MODES

# --- expansion ---------------------------------------------------------------------------------------


def test_expansion_counts_and_ids(repo: Path) -> None:
    m = load_matrix(write(repo, BASE))
    assert ids(mx.build_cells(m)) == ["a/p1", "a/p2", "b/p1", "bin/prebuilt"]
    cells = mx.scenario_cells(m)
    assert len(cells) == 4 * 2 * 2
    assert ids(cells)[:4] == ["a/p1/boot/tcg", "a/p1/boot/kvm", "a/p1/normal/tcg", "a/p1/normal/kvm"]
    assert cells[-1].id == "bin/prebuilt/normal/kvm"
    prebuilt = mx.build_cells(m)[-1]
    assert prebuilt.profile is None and prebuilt.profile_name == "prebuilt"
    assert all(c.target is None for c in cells)
    assert m.settings.guest_ram_mb == 256 and m.description == "fixture"
    assert m.repo_root == repo


def test_expansion_is_deterministic(repo: Path) -> None:
    path = write(repo, BASE)
    assert ids(mx.scenario_cells(load_matrix(path))) == ids(mx.scenario_cells(load_matrix(path)))


def test_defaults(repo: Path) -> None:
    m = load_matrix(write(repo, "trees:\n  bin: {kind: prebuilt, image: other, binary: /q}\n"))
    assert m.scenarios == list(tuple(MODES)) and m.accels == ["tcg"]
    assert len(mx.scenario_cells(m)) == 5


def test_exclude_removes_matching_cells(repo: Path) -> None:
    text = BASE + "exclude:\n  - {tree: a, accel: kvm}\n  - {profile: 'p*', scenario: boot, tree: b}\n"
    m = load_matrix(write(repo, text))
    got = ids(mx.scenario_cells(m))
    assert len(got) == 16 - 4 - 2
    assert not [i for i in got if i.startswith("a/") and i.endswith("/kvm")]
    assert "b/p1/boot/tcg" not in got and "b/p1/normal/tcg" in got


def test_include_adds_cells_in_canonical_order(repo: Path) -> None:
    text = BASE + (
        "exclude:\n  - {tree: b}\n"
        "include:\n  - {tree: b, profile: p1, scenario: cpr-exec, accel: tcg}\n"
        "  - {tree: a, profile: p2, scenario: 'cpr-*', accel: kvm}\n"
    )
    got = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert "b/p1/cpr-exec/tcg" in got and not [i for i in got if i.startswith("b/p1/") and "cpr" not in i]
    a_p2 = [i for i in got if i.startswith("a/p2/")]
    assert a_p2[-3:] == ["a/p2/cpr-reboot/kvm", "a/p2/cpr-transfer/kvm", "a/p2/cpr-exec/kvm"]
    assert got.index("a/p2/cpr-exec/kvm") < got.index("b/p1/cpr-exec/tcg")


def test_include_needs_every_key(repo: Path) -> None:
    err, text = load_error(repo, BASE + "include:\n  - {tree: a, scenario: boot}\n")
    assert "m.yaml" in err.message and f":{line(text, '- {tree: a')}:" in err.message
    assert "include[0]" in err.message and "profile, accel" in err.message


def test_include_of_pair_that_is_not_a_build_cell(repo: Path) -> None:
    err, _ = load_error(repo, BASE + "include:\n  - {tree: b, profile: p2, scenario: boot, accel: tcg}\n")
    assert "matches no build cell" in err.message and "b/p1" in (err.hint or "")


def test_upgrades(repo: Path) -> None:
    text = BASE + "upgrades:\n  up:\n    source: b/p1\n    target: a/p1\n"
    m = load_matrix(write(repo, text))
    ups = [c for c in mx.scenario_cells(m) if c.id.startswith("upgrade/")]
    assert ids(ups) == ["upgrade/up/normal/tcg", "upgrade/up/normal/kvm"]  # default: scenarios minus boot
    assert ups[0].build.id == "b/p1" and ups[0].target is not None and ups[0].target.id == "a/p1"
    assert ups[0].scenario == "normal" and ups[0].accel == "tcg"


def test_upgrade_explicit_scenarios_and_accels(repo: Path) -> None:
    text = BASE + "upgrades:\n  up: {source: a/p1, target: a/p2, scenarios: [cpr-exec], accels: [kvm]}\n"
    got = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert got[-1] == "upgrade/up/cpr-exec/kvm" and len(got) == 17


def test_upgrade_errors(repo: Path) -> None:
    text = BASE + (
        "upgrades:\n"
        "  bad-ref: {source: a/nope, target: a/p1}\n"
        "  cross: {source: a/p1, target: bin/prebuilt}\n"
        "  booting: {source: a/p1, target: a/p2, scenarios: [boot]}\n"
    )
    err, text = load_error(repo, text)
    msg = err.message
    assert "3 problems" in msg
    assert f"m.yaml:{line(text, 'bad-ref')}: upgrades.bad-ref.source: 'a/nope' is not a build cell" in msg
    assert "a/p1, a/p2, b/p1, bin/prebuilt" in msg  # the known build cells
    assert f":{line(text, 'cross:')}: upgrades.cross: source runs in image 'img', target in 'other'" in msg
    assert "upgrades.booting.scenarios" in msg


def test_upgrade_across_images_of_one_lineage(repo: Path) -> None:
    """A build from image B runs in any image derived from B: such a pair is allowed, in either order."""
    (repo / "containers" / "other" / "Dockerfile").write_text("# cpr-harness-base: image:img\n")
    text = (
        BASE
        + "upgrades:\n"
        + "  up: {source: bin/prebuilt, target: a/p1}\n"
        + "  down: {source: a/p1, target: bin/prebuilt}\n"
    )
    cells = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert "upgrade/up/normal/tcg" in cells and "upgrade/down/normal/tcg" in cells
    assert (
        images.run_image(repo / "containers", "other", "img")
        == "other"
        == images.run_image(repo / "containers", "img", "other")
    )
    assert images.lineage(repo / "containers", "other") == ["other", "img"]


# --- selection ---------------------------------------------------------------------------------------


@pytest.fixture
def sel_matrix(repo: Path) -> mx.Matrix:
    return load_matrix(write(repo, BASE + "upgrades:\n  up: {source: b/p1, target: a/p1}\n"))


def test_select_everything(sel_matrix: mx.Matrix) -> None:
    for patterns in ([], None):
        builds, scens = mx.select(sel_matrix, patterns)
        assert len(builds) == 4 and len(scens) == 18


def test_select_by_tree(sel_matrix: mx.Matrix) -> None:
    builds, scens = mx.select(sel_matrix, ["a/*"])
    assert ids(builds) == ["a/p1", "a/p2"]
    assert len(scens) == 8 and all(s.id.startswith("a/") for s in scens)


def test_select_by_scenario_pulls_upgrade_builds(sel_matrix: mx.Matrix) -> None:
    builds, scens = mx.select(sel_matrix, ["*/normal/kvm"])
    assert ids(scens) == [
        "a/p1/normal/kvm",
        "a/p2/normal/kvm",
        "b/p1/normal/kvm",
        "bin/prebuilt/normal/kvm",
        "upgrade/up/normal/kvm",
    ]
    assert ids(builds) == ["a/p1", "a/p2", "b/p1", "bin/prebuilt"]
    builds, scens = mx.select(sel_matrix, ["upgrade/*"])
    assert ids(builds) == ["a/p1", "b/p1"] and len(scens) == 2  # source and target, file order


def test_select_build_cell_only(sel_matrix: mx.Matrix) -> None:
    builds, scens = mx.select(sel_matrix, ["a/p2"])
    assert ids(builds) == ["a/p2"] and scens == []


def test_select_several_patterns_no_duplicates(sel_matrix: mx.Matrix) -> None:
    builds, scens = mx.select(sel_matrix, ["a/*", "a/p1/*", "*/boot/*"])
    assert len(ids(scens)) == len(set(ids(scens))) == 8 + 4
    assert ids(builds) == ["a/p1", "a/p2", "b/p1", "bin/prebuilt"]


def test_select_no_match_lists_ids(sel_matrix: mx.Matrix) -> None:
    with pytest.raises(ConfigError) as info:
        mx.select(sel_matrix, ["a/*", "zzz/*", "a"])
    err = info.value
    assert "'zzz/*'" in err.message and "'a'" in err.message and "m.yaml" in err.message
    assert "did you mean a/*" in (err.hint or "")
    assert "a/p1/boot/tcg" in (err.hint or "") and "upgrade/up/normal/kvm" in (err.hint or "")


def test_select_error_shortens_long_id_lists(repo: Path) -> None:
    text = BASE.replace("scenarios: [boot, normal]", "scenarios: [boot, normal, cpr-reboot, cpr-exec]")
    with pytest.raises(ConfigError) as info:
        mx.select(load_matrix(write(repo, text)), ["nope"])
    assert "more)" in (info.value.hint or "")
