"""harness.matrix: loading, validation messages (file:line: key), expansion and selection. No Docker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import matrix as mx
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SHA = "ab" * 32

BASE = f"""\
description: fixture
trees:
  a:
    kind: tarball
    image: img
    url: https://example.org/a.tar.xz
    sha256: {SHA}
  b:
    kind: git
    image: img
    url: https://example.org/b.git
    ref: main
    profiles: [p1]
  bin:
    kind: prebuilt
    image: other
    binary: /usr/bin/qemu-system-x86_64
profiles:
  p1:
    configure: [--target-list=x86_64-softmmu]
  p2: {{}}
scenarios: [boot, normal]
accels: [tcg, kvm]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for image in ("img", "other"):
        (tmp_path / "containers" / image).mkdir(parents=True)
        (tmp_path / "containers" / image / "Dockerfile").write_text("# cpr-harness-base: debian:trixie\n")
    (tmp_path / "patches" / "series-a").mkdir(parents=True)
    (tmp_path / "matrices").mkdir()
    return tmp_path


def write(repo: Path, text: str, name: str = "m.yaml") -> Path:
    path = repo / "matrices" / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(repo: Path, text: str) -> tuple[ConfigError, str]:
    path = write(repo, text)
    with pytest.raises(ConfigError) as info:
        mx.load_matrix(path)
    return info.value, path.read_text()


def line(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, s in enumerate(text.splitlines(), 1) if needle in s)


def ids(cells: list) -> list[str]:
    return [c.id for c in cells]


# --- expansion ---------------------------------------------------------------------------------------


def test_expansion_counts_and_ids(repo: Path) -> None:
    m = mx.load_matrix(write(repo, BASE))
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
    assert ids(mx.scenario_cells(mx.load_matrix(path))) == ids(mx.scenario_cells(mx.load_matrix(path)))


def test_defaults(repo: Path) -> None:
    m = mx.load_matrix(write(repo, "trees:\n  bin: {kind: prebuilt, image: other, binary: /q}\n"))
    assert m.scenarios == list(mx.SCENARIOS) and m.accels == ["tcg"]
    assert len(mx.scenario_cells(m)) == 5


def test_exclude_removes_matching_cells(repo: Path) -> None:
    text = BASE + "exclude:\n  - {tree: a, accel: kvm}\n  - {profile: 'p*', scenario: boot, tree: b}\n"
    m = mx.load_matrix(write(repo, text))
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
    got = ids(mx.scenario_cells(mx.load_matrix(write(repo, text))))
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
    m = mx.load_matrix(write(repo, text))
    ups = [c for c in mx.scenario_cells(m) if c.id.startswith("upgrade/")]
    assert ids(ups) == ["upgrade/up/normal/tcg", "upgrade/up/normal/kvm"]  # default: scenarios minus boot
    assert ups[0].build.id == "b/p1" and ups[0].target is not None and ups[0].target.id == "a/p1"
    assert ups[0].scenario == "normal" and ups[0].accel == "tcg"


def test_upgrade_explicit_scenarios_and_accels(repo: Path) -> None:
    text = BASE + "upgrades:\n  up: {source: a/p1, target: a/p2, scenarios: [cpr-exec], accels: [kvm]}\n"
    got = ids(mx.scenario_cells(mx.load_matrix(write(repo, text))))
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
    cells = ids(mx.scenario_cells(mx.load_matrix(write(repo, text))))
    assert "upgrade/up/normal/tcg" in cells and "upgrade/down/normal/tcg" in cells
    assert mx.run_image(repo, "other", "img") == "other" == mx.run_image(repo, "img", "other")
    assert mx.image_lineage(repo, "other") == ["other", "img"]


# --- selection ---------------------------------------------------------------------------------------


@pytest.fixture
def sel_matrix(repo: Path) -> mx.Matrix:
    return mx.load_matrix(write(repo, BASE + "upgrades:\n  up: {source: b/p1, target: a/p1}\n"))


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
        mx.select(mx.load_matrix(write(repo, text)), ["nope"])
    assert "more)" in (info.value.hint or "")


# --- validation messages -----------------------------------------------------------------------------


def test_unknown_key_names_line_key_and_allowed_keys(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("    ref: main\n", "    ref: main\n    branch: x\n"))
    assert err.message.endswith(f"/m.yaml:{line(text, 'branch:')}: trees.b.branch: unknown key")
    assert "allowed keys here:" in (err.hint or "") and "ref" in (err.hint or "")


def test_unknown_top_level_key(repo: Path) -> None:
    err, text = load_error(repo, BASE + "scenario: [boot]\n")
    assert f"m.yaml:{line(text, 'scenario: [boot]')}: scenario: unknown key" in err.message
    assert "scenarios" in (err.hint or "")


def test_wrong_type(repo: Path) -> None:
    err, text = load_error(repo, BASE + "settings:\n  guest_ram_mb: lots\n")
    assert f"m.yaml:{line(text, 'guest_ram_mb')}: settings.guest_ram_mb:" in err.message
    assert "integer" in err.message


def test_unquoted_version_is_a_type_error_with_hint(repo: Path) -> None:
    err, text = load_error(
        repo, "trees:\n  d: {kind: debian-source, image: img, version: 10.2}\nprofiles: {p: {}}\n"
    )
    assert f"m.yaml:{line(text, 'version')}: trees.d.version: input should be a valid string" in err.message
    assert "quote" in (err.hint or "")


def test_unknown_scenario_value(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("scenarios: [boot, normal]", "scenarios: [boot, cpr-magic]"))
    assert f"m.yaml:{line(text, 'cpr-magic')}: scenarios[1]:" in err.message and "'cpr-exec'" in err.message


def test_missing_sha256(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace(f"    sha256: {SHA}\n", ""))
    assert f"m.yaml:{line(text, '  a:')}: trees.a.sha256: required for kind 'tarball'" in err.message
    assert "add 'sha256:'" in (err.hint or "")


def test_bad_sha256(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace(SHA, "deadbeef"))
    assert f"m.yaml:{line(text, 'deadbeef')}: trees.a.sha256: must be 64 hex digits" in err.message


def test_field_of_another_kind(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("    binary: /usr", "    ref: v1\n    binary: /usr"))
    assert f":{line(text, 'ref: v1')}: trees.bin.ref: not used by kind 'prebuilt'" in err.message
    assert "git" in (err.hint or "")


def test_git_needs_ref(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("    ref: main\n", ""))
    assert "trees.b.ref: required for kind 'git'" in err.message


def test_debian_source_package_defaults_to_qemu(repo: Path) -> None:
    text = "trees:\n  d: {kind: debian-source, image: img, version: '1:10.2.2+ds-1', patches: series-a}\n"
    m = mx.load_matrix(write(repo, text + "profiles: {p: {}}\n"))
    assert m.trees["d"].package == "qemu" and m.trees["d"].patches == "series-a"


def test_local_tree_path(repo: Path) -> None:
    (repo / "src").mkdir()
    text = "trees:\n  l: {kind: local, image: img, path: ../src}\nprofiles: {p: {}}\n"
    assert mx.load_matrix(write(repo, text)).trees["l"].path == "../src"
    err, _ = load_error(repo, text.replace("../src", "../missing"))
    assert "trees.l.path: directory not found" in err.message


def test_unknown_image(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("image: other", "image: nosuch"))
    assert f"m.yaml:{line(text, 'nosuch')}: trees.bin.image: unknown image 'nosuch'" in err.message
    assert err.hint == "known images: img, other"


def test_unknown_patches_dir(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("    ref: main\n", "    ref: main\n    patches: series-b\n"))
    assert f"m.yaml:{line(text, 'series-b')}: trees.b.patches: no folder patches/series-b/" in err.message
    assert "series-a" in (err.hint or "")


def test_unknown_profile_in_tree(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace("profiles: [p1]", "profiles: [p1, p9]"))
    assert f":{line(text, 'p9')}: trees.b.profiles[1]: unknown profile 'p9'" in err.message
    assert "p1, p2" in (err.hint or "")


def test_unknown_name_in_rule(repo: Path) -> None:
    err, text = load_error(repo, BASE + "exclude:\n  - tree: a\n    scenario: cpr-nope\n")
    assert (
        f"m.yaml:{line(text, 'cpr-nope')}: exclude[0].scenario: 'cpr-nope' matches no scenario" in err.message
    )
    assert err.hint == "known scenarios: boot, normal"


def test_unknown_tree_pattern_in_include(repo: Path) -> None:
    err, text = load_error(
        repo, BASE + "include:\n  - {tree: 'z*', profile: p1, scenario: boot, accel: tcg}\n"
    )
    assert "include[0].tree: 'z*' matches no tree" in err.message
    assert "a, b, bin" in (err.hint or "")


def test_empty_exclude_rule(repo: Path) -> None:
    err, _ = load_error(repo, BASE + "exclude:\n  - {}\n")
    assert "exclude[0]: empty rule" in err.message


def test_conflicting_target_list_flags(repo: Path) -> None:
    text = BASE.replace(
        "configure: [--target-list=x86_64-softmmu]",
        "configure: [--target-list=x86_64-softmmu, --target-list-exclude=loongarch64-softmmu]",
    )
    err, text = load_error(repo, text)
    assert f"m.yaml:{line(text, 'target-list-exclude')}: profiles.p1.configure: profile 'p1'" in err.message
    assert "--target-list-exclude" in err.message


def test_configure_item_must_be_an_option(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("  p2: {}", "  p2: {configure: [x86_64-softmmu]}"))
    assert "profiles.p2.configure[0]: 'x86_64-softmmu' is not an option" in err.message


def test_invalid_and_reserved_names(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("  p2: {}", "  'p 2': {}\n  prebuilt: {}"))
    assert "profiles.p 2: invalid name 'p 2'" in err.message
    assert "profiles.prebuilt: the profile name 'prebuilt' is reserved" in err.message


def test_duplicate_scenario(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("scenarios: [boot, normal]", "scenarios: [boot, boot]"))
    assert "scenarios: 'boot' is listed twice" in err.message


def test_several_errors_in_one_message(repo: Path) -> None:
    err, text = load_error(repo, BASE.replace(SHA, "xyz").replace("image: other", "image: nosuch"))
    lines = err.message.splitlines()
    assert lines[0].endswith("/m.yaml: 2 problems")
    assert any(f":{line(text, 'xyz')}: trees.a.sha256" in s for s in lines)
    assert any(f":{line(text, 'nosuch')}: trees.bin.image" in s for s in lines)
    assert sum("fix:" in s for s in lines) == 2


def test_structural_and_cross_check_errors_reported_together(repo: Path) -> None:
    text = BASE.replace("    ref: main\n", "    ref: main\n    submodules: maybe\n").replace(
        "image: other", "image: x"
    )
    err, text = load_error(repo, text + "settings: {build_jobs: 0}\n")
    lines = [s for s in err.message.splitlines() if "fix:" not in s]
    assert lines[0].endswith("m.yaml: 3 problems")
    # sorted by line: the bad git tree, the prebuilt tree's image (cross-check), the settings value
    assert f":{line(text, 'submodules')}: trees.b.submodules: input should be a valid boolean" in lines[1]
    assert f":{line(text, 'image: x')}: trees.bin.image: unknown image 'x'" in lines[2]
    assert "settings.build_jobs: input should be greater than or equal to 1" in lines[3]
    assert "no trees defined" not in err.message and "unknown profile" not in err.message


def test_sha256_is_normalised_to_lower_case(repo: Path) -> None:
    m = mx.load_matrix(write(repo, BASE.replace(SHA, SHA.upper())))
    assert m.trees["a"].sha256 == SHA


def test_yaml_syntax_error(repo: Path) -> None:
    err, _ = load_error(repo, BASE + "settings:\n  guest_ram_mb: [1, 2\n")
    assert "m.yaml:" in err.message and "YAML syntax error" in err.message
    number = int(err.message.split("m.yaml:")[1].split(":")[0])
    assert number >= len(BASE.splitlines())


def test_duplicate_key(repo: Path) -> None:
    err, text = load_error(repo, BASE + "accels: [tcg]\n")
    assert (
        f"m.yaml:{len(text.splitlines())}: accels: duplicate key (first at line {line(text, 'accels')})"
        in (err.message)
    )


def test_not_a_mapping_and_empty(repo: Path) -> None:
    assert "must be a mapping" in load_error(repo, "- a\n- b\n")[0].message
    assert "must be a mapping" in load_error(repo, "")[0].message
    assert "trees: required key is missing" in load_error(repo, "description: x\n")[0].message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        mx.load_matrix(tmp_path / "nope.yaml")
    assert "nope.yaml" in info.value.message and "not found" in info.value.message


def test_explicit_repo_root(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "m.yaml"
    elsewhere.write_text(BASE)
    with pytest.raises(ConfigError):
        mx.load_matrix(elsewhere)  # repo root defaults to the file's directory: no containers/ there
    assert len(mx.build_cells(mx.load_matrix(elsewhere, repo_root=repo))) == 4


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
    m = mx.load_matrix(REPO / "matrices" / "default.yaml", repo_root=shipped_root)
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
    m = mx.load_matrix(REPO / "matrices" / "smoke.yaml")  # only images that exist in the repo
    assert ids(mx.build_cells(m)) == ["debian-10.0/prebuilt", "debian-11.1/prebuilt"]
    assert len(mx.scenario_cells(m)) == 2 * 5 and m.accels == ["tcg"]


def test_nightly_matrix(shipped_root: Path) -> None:
    m = mx.load_matrix(REPO / "matrices" / "nightly.yaml", repo_root=shipped_root)
    builds, scens = mx.build_cells(m), mx.scenario_cells(m)
    assert len(builds) == 11  # issue 5 added openeuler-24.03-src/openeuler (src-openEuler spec form)
    assert "openeuler-8.2/openeuler" in ids(builds) and "upstream-10.2.0/werror" in ids(builds)
    assert not [
        s for s in scens if s.build.tree_name.startswith("openeuler") and s.scenario == "cpr-transfer"
    ]
    assert not [s for s in scens if s.build.profile_name == "werror" and s.scenario.startswith("cpr-")]
    ups = [s for s in scens if s.target is not None]
    assert len(ups) == 4 * 2 + 1 * 2 and ups[0].id == "upgrade/release-to-master/normal/tcg"
    assert len(scens) == 90 + 4 * 2  # openeuler-24.03-src/openeuler: 4 scenarios (no cpr-transfer) x 2
    assert m.trees["openeuler-24.03-src"].patches == "src-openeuler-qemu-24.03"
    assert m.trees["upstream-10.2.0"].sha256 and len(m.trees["upstream-10.2.0"].sha256 or "") == 64
    seed = m.profiles["openeuler"].configure
    assert "--disable-werror" in seed and "--target-list-exclude=loongarch64-softmmu" in seed
    builds, scens = mx.select(m, ["upgrade/release-to-master/*"])
    assert ids(builds) == ["upstream-10.2.0/lean", "upstream-master/lean"]


@pytest.mark.parametrize("name", ["default", "smoke", "nightly"])
def test_shipped_matrices_load_against_the_real_repo(name: str) -> None:
    if name == "nightly" and not (REPO / "containers" / "debian-bookworm" / "Dockerfile").is_file():
        pytest.skip("containers/debian-bookworm is not in the repository yet")
    m = mx.load_matrix(REPO / "matrices" / f"{name}.yaml")
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
    m = mx.load_matrix(root / "matrices" / "example.yaml")
    builds, scens = mx.build_cells(m), mx.scenario_cells(m)
    assert ids(builds) == [
        "upstream-10.2.0/lean",
        "upstream-master/lean",
        "my-work/lean",
        "debian-11.1/prebuilt",
    ]
    assert len([s for s in scens if s.target is None]) == 35 and len([s for s in scens if s.target]) == 8
