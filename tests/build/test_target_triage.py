"""Triage that reads the tree: a failure tied to one target of a multi-target build excludes that target."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build.remedy import apply_change
from harness.build.target_triage import analyze, configured_targets, symbol_setters

POISONED = '../system/vl.c:130:8: error: attempt to use poisoned "CONFIG_ARDUINO"'


def tree(root: Path) -> Path:
    targets = {
        "x86_64-softmmu": "TARGET_ARCH=x86_64\nTARGET_BASE_ARCH=i386\n",
        "i386-softmmu": "TARGET_ARCH=i386\n",
        "avr-softmmu": "TARGET_ARCH=avr\n",
        "aarch64-softmmu": "TARGET_ARCH=aarch64\nTARGET_BASE_ARCH=arm\n",
        "loongarch64-softmmu": "TARGET_ARCH=loongarch64\nTARGET_BASE_ARCH=loongarch\n",
    }
    (root / "configs" / "targets").mkdir(parents=True)
    for name, text in targets.items():
        (root / "configs" / "targets" / f"{name}.mak").write_text(text)
        (root / "configs" / "devices" / name).mkdir(parents=True)
        (root / "configs" / "devices" / name / "default.mak").write_text("# boards default to y\n")
    (root / "configs" / "targets" / "x86_64-linux-user.mak").write_text("TARGET_ARCH=x86_64\n")
    (root / "configs" / "devices" / "avr-softmmu" / "default.mak").write_text(
        "CONFIG_ARDUINO=y\n# CONFIG_X=n\n"
    )
    return root


def test_configured_targets_follow_configure(tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert configured_targets(root, ["--target-list=x86_64-softmmu,avr-softmmu"]) == [
        "x86_64-softmmu",
        "avr-softmmu",
    ]
    default = configured_targets(root, ["--target-list-exclude=loongarch64-softmmu"])
    assert default == ["aarch64-softmmu", "avr-softmmu", "i386-softmmu", "x86_64-softmmu"]  # softmmu only
    assert symbol_setters(root, "CONFIG_ARDUINO", default) == {
        "avr-softmmu": "configs/devices/avr-softmmu/default.mak"
    }
    assert symbol_setters(root, "CONFIG_X", default) == {}  # "# CONFIG_X=n" sets nothing


def test_poisoned_symbol_set_by_one_target_excludes_it(tmp_path: Path) -> None:
    root = tree(tmp_path)
    found = analyze(
        root, ["--target-list=x86_64-softmmu,avr-softmmu"], "[5/9] cc\n" + POISONED, ["qemu-system-x86_64"]
    )
    assert found is not None and found.rule == "target-specific"
    assert found.cause == "target avr-softmmu breaks the build (system/vl.c)"
    assert "CONFIG_ARDUINO (poisoned in common code in system/vl.c)" in found.explanation
    assert "configs/devices/avr-softmmu/default.mak" in found.explanation
    assert found.change == {"name": "no-avr", "add_configure": ["--target-list-exclude=avr-softmmu"]}
    assert "drop avr-softmmu from --target-list" in found.remedy
    after = apply_change(["--target-list=x86_64-softmmu,avr-softmmu", "--disable-docs"], found.change)
    assert after == ["--target-list=x86_64-softmmu", "--disable-docs"]


def test_an_error_in_one_targets_files_excludes_it_from_the_default_list(tmp_path: Path) -> None:
    root = tree(tmp_path)
    configure = ["--target-list-exclude=loongarch64-softmmu", "--disable-werror"]
    text = "../hw/arm/virt.c:88:3: error: 'foo' undeclared (first use in this function)"
    found = analyze(root, configure, text, ["qemu-system-x86_64"])
    assert found is not None and found.cause == "target aarch64-softmmu breaks the build (hw/arm/virt.c)"
    assert found.change == {"name": "no-aarch64", "add_configure": ["--target-list-exclude=aarch64-softmmu"]}
    merged = apply_change(configure, found.change)  # the profile's own exclusion is kept
    assert merged == ["--disable-werror", "--target-list-exclude=loongarch64-softmmu,aarch64-softmmu"]


@pytest.mark.parametrize(
    ("configure", "text", "why"),
    [
        (["--target-list=x86_64-softmmu"], POISONED, "one target only"),
        (["--target-list=x86_64-softmmu,avr-softmmu"], "../hw/i386/pc.c:1:1: error: x", "the built target"),
        (["--target-list=x86_64-softmmu,i386-softmmu"], "../target/i386/cpu.c:1:1: error: x", "two owners"),
        (["--target-list=x86_64-softmmu,avr-softmmu"], "../util/x.c:1:1: error: expected ';'", "common file"),
    ],
)
def test_no_target_is_blamed_without_evidence(
    tmp_path: Path, configure: list[str], text: str, why: str
) -> None:
    assert analyze(tree(tmp_path), configure, text, ["qemu-system-x86_64"]) is None, why


def test_symbols_kconfig_selects_are_found_in_the_build_dir(tmp_path: Path) -> None:
    root = tree(tmp_path / "src")
    (root / "configs" / "devices" / "avr-softmmu" / "default.mak").write_text("# CONFIG_ARDUINO=n\n")
    obj = tmp_path / "obj"
    obj.mkdir()
    (obj / "avr-softmmu-config-devices.mak").write_text("CONFIG_ARDUINO=y\nCONFIG_AVR_TIMER16=y\n")
    (obj / "x86_64-softmmu-config-devices.mak").write_text("CONFIG_PC=y\n")
    configure = ["--target-list=x86_64-softmmu,avr-softmmu"]
    assert analyze(root, configure, POISONED, ["qemu-system-x86_64"]) is None  # the tree alone: no setter
    found = analyze(root, configure, POISONED, ["qemu-system-x86_64"], obj)
    assert found is not None and "avr-softmmu-config-devices.mak (generated by configure" in found.explanation
