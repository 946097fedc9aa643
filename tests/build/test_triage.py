"""Triage rules (harness/triage_rules.yaml) on log excerpts, including the seed maintainer's exact lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA, REPO

from harness.build.triage import RULES_PATH, classify, load_rules, package_for
from harness.config.images import distro
from harness.errors import InternalError

TRIAGE = DATA / "triage"

# Verbatim from the seed (a maintainer's notes on building openEuler's QEMU).
SEED_WERROR = (
    "/home/wang/workspace/qemu/openEuler/qemu/include/qapi/qmp/qobject.h:49:17:\n"
    "error: ‘subqdict’ may be used uninitialized [-Werror=maybe-uninitialized]"
)
SEED_BPF = (
    "/home/wang/workspace/qemu/openEuler/qemu/build/../ebpf/ebpf_rss.c:52: undefined\n"
    "reference to `bpf_program__set_socket_filter'"
)
SEED_LOONGARCH = (
    "../hw/loongarch/larch_3a.c:344:8: error: variable ‘ls3a5k_cpucfgs’ has initializer but incomplete type\n"
)
SEED_LOONGARCH += """  344 | struct kvm_cpucfg ls3a5k_cpucfgs = {
      |        ^~~~~~~~~~
../hw/loongarch/larch_3a.c:345:6: error: ‘struct kvm_cpucfg’ has no member named ‘cpucfg’
  345 |     .cpucfg[LOONGARCH_CPUCFG0] = CPUCFG0_3A5000_PRID,
      |      ^~~~~~"""


def _log(name: str) -> str:
    return (TRIAGE / name).read_text()


def test_fixtures_carry_the_seed_lines_verbatim() -> None:
    assert SEED_WERROR in _log("seed-werror.log")
    assert SEED_BPF in _log("seed-bpf.log")
    assert SEED_LOONGARCH in _log("seed-loongarch.log")


@pytest.mark.parametrize("text", [SEED_WERROR, _log("seed-werror.log")])
def test_maybe_uninitialized_werror(text: str) -> None:
    t = classify("compile", text)
    assert t.rule == "werror" and t.stage == "compile"
    assert t.cause == "warning treated as error: -Wmaybe-uninitialized"
    assert "subqdict" in t.explanation and "subqdict" in t.evidence
    assert t.change == {"name": "disable-werror", "add_configure": ["--disable-werror"]}
    assert t.alternatives == [{"name": "no-maybe-uninitialized", "add_cflags": ["-Wno-maybe-uninitialized"]}]
    assert "--disable-werror" in t.remedy and "--extra-cflags=-Wno-maybe-uninitialized" in t.remedy


def test_other_werror_warning_names_it() -> None:
    t = classify("compile", _log("unused-parameter.log"))
    assert t.rule == "werror" and t.cause.endswith("-Wunused-parameter")
    assert t.alternatives[0]["add_cflags"] == ["-Wno-unused-parameter"]


@pytest.mark.parametrize("text", [SEED_BPF, _log("seed-bpf.log")])
def test_bpf_socket_filter(text: str) -> None:
    t = classify("link", text)
    assert t.rule == "bpf-socket-filter" and t.stage == "link"
    assert "libbpf" in t.cause
    assert t.change == {"name": "disable-bpf", "add_configure": ["--disable-bpf"]}


@pytest.mark.parametrize("text", [SEED_LOONGARCH, _log("seed-loongarch.log")])
def test_loongarch_kvm_cpucfg(text: str) -> None:
    t = classify("compile", text)
    assert t.rule == "loongarch-kvm-cpucfg"
    assert t.change == {
        "name": "no-loongarch",
        "add_configure": ["--target-list-exclude=loongarch64-softmmu"],
    }


@pytest.mark.parametrize(("distro", "package"), [("debian", "libglib2.0-dev"), ("openeuler", "glib2-devel")])
def test_missing_dependency_names_the_distro_package(distro: str, package: str) -> None:
    t = classify("configure", _log("meson-missing-glib.log"), distro=distro, image="img")
    assert t.rule == "missing-dependency"
    assert t.cause == "missing build dependency: glib-2.0"  # not the optional libbpf listed earlier
    assert f"Install {package} in containers/img/Dockerfile" in t.remedy
    assert t.change is None


@pytest.mark.parametrize(
    ("line", "name", "package"),
    [
        ('ERROR: Dependency "pixman-1" not found, tried pkgconfig', "pixman-1", "libpixman-1-dev"),
        ('meson.build:9:2: ERROR: Dependency "zlib" not found', "zlib", "zlib1g-dev"),
        ('ERROR: Dependency "libfdt" not found', "libfdt", "libfdt-dev"),
        ('ERROR: Dependency "slirp" not found', "slirp", "libslirp-dev"),
        ("pc-bios/dtb/meson.build:24:4: ERROR: File bamboo.dtb does not exist.", "bamboo", "device-tree"),
    ],
)
def test_common_missing_dependencies(line: str, name: str, package: str) -> None:
    t = classify("configure", line, image="debian-trixie")
    assert t.rule == "missing-dependency" and t.cause.endswith(name)
    assert package in t.remedy


def test_subproject_download_offline() -> None:
    t = classify("configure", _log("meson-offline-dtc.log"), image="debian-trixie")
    assert t.rule == "subproject-offline"
    assert t.cause == "meson subproject dtc needs a download, and the build is offline"
    assert "libfdt-dev" in t.remedy
    git = classify("configure", "ERROR: Git program not found, cannot download dtc.wrap via git.")
    assert git.rule == "subproject-offline" and "dtc" in git.cause
    vague = classify("configure", "Subproject  slirp is buildable: NO (disabling)\nERROR: meson setup failed")
    assert vague.rule == "subproject-unbuildable" and "slirp" in vague.cause


def test_out_of_memory_and_disk_full() -> None:
    oom = classify("compile", _log("oom.log"))
    assert oom.rule == "out-of-memory" and "build_jobs" in oom.remedy
    assert classify("compile", "virtual memory exhausted: Cannot allocate memory").rule == "out-of-memory"
    disk = classify("compile", _log("disk-full.log"))
    assert disk.rule == "disk-full" and disk.stage == "infra"


def test_engine_errors_are_infra() -> None:
    error = (
        "Docker engine error while creating a container of cpr-harness/debian-trixie:abc: 500 Server Error"
    )
    t = classify("infra", "", error=error)
    assert t.rule == "infra-engine" and t.stage == "infra" and t.cause.startswith("infrastructure: Docker")
    pull = "image openeuler-24.03: cannot pull openeuler/openeuler:24.03-lts (no registry answers: x)"
    assert classify("infra", "", error=pull).rule == "infra-engine"


def test_patch_conflict_names_patch_and_hunk() -> None:
    series = {
        "statuses": [
            {"name": "0001-a.patch", "status": "applied"},
            {
                "name": "0002-b.patch",
                "status": "failed",
                "rejects": [{"file": "migration/cpr.c", "hunk": 2, "text": "@@ ..."}],
            },
        ]
    }
    t = classify("patch", "", error="a patch did not apply", series=series)
    assert t.rule == "patch-conflict" and t.cause == "patch 0002-b.patch did not apply"
    assert "hunk #2 of migration/cpr.c" in t.explanation


def test_unknown_option_suggests_dropping_it() -> None:
    t = classify("configure", "ERROR: unknown option --disable-download\nTry './configure --help'")
    assert t.rule == "unknown-option"
    assert t.change == {"name": "without--disable-download", "remove_configure": ["--disable-download"]}


def test_anything_else_is_unclassified_with_the_first_error_line() -> None:
    text = (
        "[1/9] Compiling\nnote: harmless\n../x.c:1:1: error: expected ';' before '}' token\nlater error: y\n"
    )
    t = classify("compile", text)
    assert t.rule == "unclassified" and t.cause == "unclassified"
    assert t.evidence == "../x.c:1:1: error: expected ';' before '}' token"
    assert classify(None, "").stage == "compile"


def test_rules_only_apply_at_their_stages() -> None:
    # the same text at the compile stage is not a configure dependency problem
    assert classify("compile", 'ERROR: Dependency "zlib" not found').rule == "unclassified"


def test_bad_rules_file_is_our_bug_not_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"  # the rules ship with the harness: a broken file is an InternalError
    bad.write_text("rules:\n  - id: x\n    patterns: ['a']\n    cause: c\n    remedy_text: oops\n")
    with pytest.raises(InternalError, match=r"rules.yaml: rule x: unknown key\(s\) remedy_text") as info:
        load_rules(bad)
    assert info.value.exit_code == 70
    bad.write_text("rules:\n  - id: y\n    patterns: ['(']\n    cause: c\n")
    with pytest.raises(InternalError, match="rule y: bad pattern"):
        load_rules(bad)


def test_package_lookup_and_distro(tmp_path: Path) -> None:
    assert package_for("glib-2.0", "openeuler") == "glib2-devel"
    assert package_for("fdt", "debian") == "libfdt-dev"
    assert package_for("libfoo", "debian") == "the development package of libfoo"
    assert distro(REPO / "containers", "debian-trixie") == "debian"
    assert distro(REPO / "containers", "qemu-trixie") == "debian"  # image: -> debian-trixie
    assert distro(REPO / "containers", "openeuler-24.03") == "openeuler"
    assert distro(tmp_path, "missing") == "debian"


def test_shipped_rules_file_lives_in_the_package() -> None:
    assert RULES_PATH.parent == REPO / "harness" / "build" and RULES_PATH.is_file()
    assert len(load_rules().rules) >= 10


# --------------------------------------------------------------------------------------------------
# Engine and image errors end up as `infra` cells, and the other cells still build (needs Docker).

OE_MATRIX = """\
trees:
  oe-8.2:
    kind: tarball
    image: openeuler-24.03
    url: https://download.qemu.org/qemu-8.2.0.tar.xz
    sha256: bf00d2fa12010df8b0ade93371def58e632cb32a6bfdc5f5a0ff8e6a1fb1bf32
  upstream-10.2:
    kind: debian-source
    image: debian-trixie
    version: "1:10.2.2+ds-1"
    patches: qemu-ds
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu, --disable-docs, --disable-install-blobs, --disable-download]
    targets: [qemu-system-x86_64]
scenarios: [boot]
"""


@pytest.mark.docker
def test_registry_only_image_without_registry_is_one_infra_error() -> None:
    from harness.engine.containers import Engine
    from harness.errors import InfraError

    engine = Engine.connect(progress=lambda line: None)
    assert str(engine.images.base_of("openeuler-24.03").value) == "openeuler/openeuler:24.03-lts"
    try:
        engine.client.images.get("openeuler/openeuler:24.03-lts")
        pytest.skip("the openEuler base image is present here: nothing to refuse")
    except Exception:
        pass
    with pytest.raises(InfraError) as info:
        engine.ensure_image("openeuler-24.03")
    message = info.value.message
    assert "cannot pull openeuler/openeuler:24.03-lts" in message and "no bootstrap" in message
    assert "docker load" in (info.value.hint or "")


@pytest.mark.docker
def test_build_keeps_going_after_an_infra_cell(tmp_path: Path, cache_dir: Path) -> None:
    from conftest import run_harness, store_args

    matrix = tmp_path / "oe.yaml"
    matrix.write_text(OE_MATRIX)
    reports = tmp_path / "reports"
    done = run_harness("build", "--matrix", str(matrix), *store_args(cache_dir, reports, "r"))
    builds = reports / "r" / "builds"
    oe = json.loads((builds / "oe-8.2__lean" / "build.json").read_text())
    upstream = json.loads((builds / "upstream-10.2__lean" / "build.json").read_text())
    assert oe["verdict"] == "error" and oe["stage"] == "infra", oe
    assert oe["triage"]["rule"] == "infra-engine" and "no bootstrap" in oe["triage"]["cause"]
    assert upstream["verdict"] == "pass", done.stdout[-3000:]
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "builds: 1 passed" in done.stdout


def test_malformed_queue_is_its_own_cause() -> None:
    error = "patches/x/qemu.spec:2: Patch1 file 'missing.patch' not found in patches/x"
    t = classify("patch", "", error=error)
    assert t.rule == "patch-queue" and t.explanation == error
    evil = "patches/x/0001-a.patch:4: refers to '../etc/passwd', outside the tree"
    assert classify("patch", "", error=evil).rule == "patch-queue"
