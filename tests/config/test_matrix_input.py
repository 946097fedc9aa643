"""Bad input gets one message naming file, line and key: encodings, numbers, option-like values, URLs,
patch folders and ccache domains."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_harness
from matrixkit import BASE, line, load_error, write

from harness.config.matrix import load_matrix
from harness.config.schema import Tree
from harness.errors import ConfigError


def test_a_file_that_is_not_utf8_is_one_message(repo: Path, tmp_path: Path) -> None:
    path = repo / "matrices" / "latin1.yaml"
    path.write_bytes(BASE.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    assert f"latin1.yaml:{BASE.count(chr(10)) + 1}: the file is not UTF-8 (byte 0xe9" in info.value.message
    assert "UTF-8" in (info.value.hint or "")
    done = run_harness("list", "--matrix", str(path))  # and through the CLI: exit 2, no traceback
    assert done.returncode == 2 and "not UTF-8" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("step_timeout_s", ".inf", "finite number"),
        ("step_timeout_s", ".nan", "finite number"),
        ("step_timeout_s", "86400000", "less than or equal to 3600"),
        ("guest_ram_mb", ".inf", "valid integer"),
        ("guest_ram_mb", "99999999999", "less than or equal to 65536"),
        ("build_jobs", "100000", "less than or equal to 1024"),
        ("pids_limit", "5", "greater than or equal to 64"),
        ("build_memory_mb", "true", "valid integer"),
        ("scenario_memory_mb", "-1", "greater than or equal to 256"),
    ],
)
def test_absurd_numbers_in_settings_are_refused(repo: Path, setting: str, value: str, problem: str) -> None:
    err, text = load_error(repo, BASE + f"settings:\n  {setting}: {value}\n")
    assert f"m.yaml:{line(text, setting)}: settings.{setting}:" in err.message and problem in err.message


def test_scenario_memory_must_hold_two_guests(repo: Path) -> None:
    err, _ = load_error(repo, BASE + "settings:\n  guest_ram_mb: 1024\n  scenario_memory_mb: 1024\n")
    assert "settings.scenario_memory_mb: 1024 MiB cannot hold two guests of 1024 MiB" in err.message
    assert "2560" in (err.hint or "")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [("    ref: main\n", "    ref: --upload-pack=touch /tmp/x\n", "ref"),
     ("    url: https://example.org/b.git\n", "    url: -oProxyCommand=x\n", "url")],
)  # fmt: skip
def test_git_values_that_read_as_options_are_refused(repo: Path, old: str, new: str, key: str) -> None:
    err, text = load_error(repo, BASE.replace(old, new))
    assert f"m.yaml:{line(text, new.strip())}: trees.b.{key}: must not start with '-'" in err.message


def test_file_urls_must_be_absolute(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("https://example.org/a.tar.xz", "file://a.tar.xz"))
    assert "trees.a.url: must be an http(s):// URL or a file:///absolute/path URL" in err.message
    ok = load_matrix(write(repo, BASE.replace("https://example.org/a.tar.xz", "file:///srv/a.tar.xz")))
    assert ok.trees["a"].url == "file:///srv/a.tar.xz"


def test_patches_may_be_a_folder_beside_the_matrix(repo: Path) -> None:
    (repo / "matrices" / "my-queue").mkdir()
    text = BASE.replace("    profiles: [p1]\n", "    profiles: [p1]\n    patches: ./my-queue\n")
    assert load_matrix(write(repo, text)).trees["b"].patches == "./my-queue"
    err, _ = load_error(repo, text.replace("./my-queue", "./missing-queue"))
    assert "trees.b.patches: folder not found:" in err.message and "missing-queue" in err.message


def test_ccache_domains() -> None:
    tarball = Tree(kind="tarball", image="debian-trixie", url="https://x/y.tar.xz", sha256="a" * 64)
    local = Tree(kind="local", image="debian-trixie", path=".")
    assert tarball.ccache_domain("up") == "image-debian-trixie"
    assert local.ccache_domain("mine") == "local-mine"  # a checkout shares with no other tree...
    asked = local.model_copy(update={"ccache": "image-debian-trixie"})
    assert asked.ccache_domain("mine") == "image-debian-trixie"  # ...unless the matrix asks for it


def test_ccache_domain_name_is_checked(repo: Path) -> None:
    err, _ = load_error(repo, BASE.replace("    ref: main\n", "    ref: main\n    ccache: ../../etc\n"))
    assert "trees.b.ccache: invalid ccache domain '../../etc'" in err.message
