"""Migration option sets (``migration:``) and refusal scenarios (``refusals:``) in a matrix: crossed with
the migrating modes, ``default`` keeping the ids of earlier releases, every mistake named by key."""

from __future__ import annotations

from pathlib import Path

from matrixkit import BASE, ids, line, load_error, write

from harness.config import cells as mx
from harness.config.matrix import load_matrix

ONE = """\
trees:
  bin: {kind: prebuilt, image: other, binary: /usr/bin/qemu-system-x86_64}
scenarios: [boot, cpr-exec]
"""
SETS = """\
migration:
  default:
  mapped-ram:
    capabilities: [mapped-ram]
  multifd:
    capabilities: [multifd]
    parameters: {multifd-channels: 2}
"""


def test_no_sets_means_default_and_the_ids_of_earlier_releases(repo: Path) -> None:
    m = load_matrix(write(repo, ONE))
    assert list(m.migration) == ["default"] and m.refusals == []
    assert ids(mx.scenario_cells(m)) == ["bin/prebuilt/boot/tcg", "bin/prebuilt/cpr-exec/tcg"]
    assert all(c.migration_name == "default" for c in mx.scenario_cells(m))


def test_sets_cross_the_migrating_modes_only_and_are_named_in_the_id(repo: Path) -> None:
    m = load_matrix(write(repo, ONE + SETS))
    assert ids(mx.scenario_cells(m)) == [
        "bin/prebuilt/boot/tcg",
        "bin/prebuilt/cpr-exec/tcg",
        "bin/prebuilt/mapped-ram/cpr-exec/tcg",
        "bin/prebuilt/multifd/cpr-exec/tcg",
    ]
    cell = mx.scenario_cells(m)[-1]
    assert cell.migration.capabilities == ["multifd"] and cell.migration.parameters == {"multifd-channels": 2}
    assert ids(mx.select(m, ["*/mapped-ram/*"])[1]) == ["bin/prebuilt/mapped-ram/cpr-exec/tcg"]


def test_machine_comes_before_the_set_in_the_id(repo: Path) -> None:
    text = ONE + SETS + "machines:\n  minimal:\n  two:\n    guest: linux\n    vcpus: 2\n    ram_mb: 512\n"
    cells = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert "bin/prebuilt/two/multifd/cpr-exec/tcg" in cells and "bin/prebuilt/two/cpr-exec/tcg" in cells


def test_rules_and_upgrades_take_sets(repo: Path) -> None:
    text = (
        BASE
        + SETS
        + "exclude:\n  - {migration: mapped-ram, accel: kvm}\n"
        + "upgrades:\n  up:\n    source: b/p1\n    target: a/p1\n    migration: [multifd]\n"
    )
    cells = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert "a/p1/mapped-ram/normal/tcg" in cells and "a/p1/mapped-ram/normal/kvm" not in cells
    assert "a/p1/multifd/normal/kvm" in cells and "a/p1/mapped-ram/boot/tcg" not in cells
    assert "upgrade/up/multifd/normal/tcg" in cells and "upgrade/up/normal/tcg" not in cells
    err, _ = load_error(repo, BASE + SETS + "upgrades:\n  up: {source: b/p1, target: a/p1, migration: [x]}\n")
    assert "upgrades.up.migration[0]: unknown option set 'x'" in err.message
    err, _ = load_error(repo, BASE + SETS + "exclude:\n  - {migration: nope}\n")
    assert "'nope' matches no migration" in err.message


def test_a_set_may_not_touch_what_the_recipes_own(repo: Path) -> None:
    bad = (
        "migration:\n  mine:\n    capabilities: [x-ignore-shared, 'Bad Cap']\n"
        "    parameters: {mode: cpr-exec, multifd-channels: 2}\n  empty: {}\n"
        "  default: {capabilities: [multifd]}\n"
    )
    err, text = load_error(repo, ONE + bad)
    assert (
        f"m.yaml:{line(text, 'capabilities: [x-')}: migration.mine.capabilities[0]: "
        "'x-ignore-shared' is set by the recipes" in err.message
    )
    assert "migration.mine.capabilities[1]: 'Bad Cap' is not a QMP capability name" in err.message
    assert "migration.mine.parameters.mode: 'mode' is set by the recipes" in err.message
    assert "migration.empty: sets no capability and no parameter" in err.message
    assert "migration.default: 'default' is built in and takes no settings" in err.message
    err, _ = load_error(repo, ONE + "migration:\n  m:\n    parameters: {multifd-channels: [1]}\n")
    assert "migration.m.parameters.multifd-channels" in err.message


def test_a_set_named_like_a_machine_is_refused(repo: Path) -> None:
    text = ONE + "machines:\n  twin:\n    guest: linux\nmigration:\n  twin: {capabilities: [multifd]}\n"
    err, _ = load_error(repo, text)
    assert "migration.twin: 'twin' is also a machine profile" in err.message


def test_refusals_are_scenarios_of_their_own(repo: Path) -> None:
    text = ONE + SETS + "refusals: [refuse-exec-no-command, refuse-transfer-file-channel]\n"
    m = load_matrix(write(repo, text))
    cells = {c.id: c for c in mx.scenario_cells(m)}
    cell = cells["bin/prebuilt/refuse-exec-no-command/tcg"]
    assert cell.mode == "cpr-exec" and cell.scenario == "refuse-exec-no-command"
    assert cells["bin/prebuilt/refuse-transfer-file-channel/tcg"].mode == "cpr-transfer"
    assert not [i for i in cells if "mapped-ram/refuse" in i]  # a refusal migrates nothing: default only
    err, _ = load_error(repo, ONE + "refusals: [refuse-everything]\n")
    assert "refusals[0]: unknown refusal scenario 'refuse-everything'" in err.message
    assert "refuse-exec-no-command" in (err.hint or "")
    err, _ = load_error(repo, ONE + "refusals: [refuse-exec-no-command, refuse-exec-no-command]\n")
    assert "'refuse-exec-no-command' is listed twice" in err.message
