"""Loading a matrix: every problem is one line naming file:line and key, with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrixkit import BASE, SHA, line, load_error, write

from harness.config import cells as mx
from harness.config.matrix import load_matrix
from harness.errors import ConfigError

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
    m = load_matrix(write(repo, text + "profiles: {p: {}}\n"))
    assert m.trees["d"].package == "qemu" and m.trees["d"].patches == "series-a"


def test_local_tree_path(repo: Path) -> None:
    (repo / "src").mkdir()
    text = "trees:\n  l: {kind: local, image: img, path: ../src}\nprofiles: {p: {}}\n"
    assert load_matrix(write(repo, text)).trees["l"].path == "../src"
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
    m = load_matrix(write(repo, BASE.replace(SHA, SHA.upper())))
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
        load_matrix(tmp_path / "nope.yaml")
    assert "nope.yaml" in info.value.message and "not found" in info.value.message


def test_explicit_repo_root(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "m.yaml"
    elsewhere.write_text(BASE)
    with pytest.raises(ConfigError):
        load_matrix(elsewhere)  # repo root defaults to the file's directory: no containers/ there
    assert len(mx.build_cells(load_matrix(elsewhere, repo_root=repo))) == 4
