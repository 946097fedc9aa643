"""Device checks: the device tree."""

from __future__ import annotations

from observations import QTREE_DST_EXTRA_HD, QTREE_SRC, good, one

from harness.live.checks import evaluate, verdict_of
from harness.live.checks.devices import qtree_devices

# --- device-tree --------------------------------------------------------------------------------------


def test_device_tree_identical_passes() -> None:
    c = one(good(), "device-tree")
    assert c.verdict == "pass"
    assert c.observed == f"identical ({len(QTREE_SRC.splitlines())} lines)"


def test_device_tree_extra_ide_hd_is_named() -> None:
    obs = good("cpr-exec")
    obs.destination.qtree = QTREE_DST_EXTRA_HD
    c = one(obs, "device-tree")
    assert c.verdict == "fail"
    assert c.observed == "destination has extra dev: ide-hd (drive ide0-hd0)"
    assert c.detail.startswith("--- source (before)\n+++ destination (after)\n")
    assert '+          dev: ide-hd, id ""' in c.detail.splitlines()
    assert '+            drive = "ide0-hd0"' in c.detail.splitlines()
    reason = verdict_of(evaluate(obs))[1]
    assert reason == "device-tree: destination has extra dev: ide-hd (drive ide0-hd0)"


def test_device_tree_missing_device_is_named() -> None:
    obs = good()
    obs.source.qtree = QTREE_DST_EXTRA_HD
    c = one(obs, "device-tree")
    assert c.observed == "destination lacks dev: ide-hd (drive ide0-hd0)"


def test_device_tree_property_change_fails_without_hiding() -> None:
    obs = good()
    obs.destination.qtree = QTREE_SRC.replace("hpet-offset-saved = true", "hpet-offset-saved = false")
    c = one(obs, "device-tree")
    assert c.verdict == "fail"
    assert c.observed == "same devices, 2 changed line(s), first: - hpet-offset-saved = true"
    assert "+    hpet-offset-saved = false" in c.detail


def test_device_tree_whitespace_is_not_normalised() -> None:
    obs = good()
    obs.destination.qtree = QTREE_SRC.replace("  dev: ioapic", "   dev: ioapic")
    assert one(obs, "device-tree").verdict == "fail"


def test_device_tree_fails_without_text() -> None:
    obs = good()
    obs.source.qtree = None  # evidence that should exist is missing: never a silent skip
    c = one(obs, "device-tree")
    assert (c.verdict, c.observed) == ("fail", "no source qtree was read")
    assert one(good("boot"), "device-tree").verdict == "skip"


def test_qtree_devices_labels() -> None:
    devs = qtree_devices(QTREE_DST_EXTRA_HD + '          dev: virtio-blk-pci, id "disk0"\n')
    assert devs["ide-hd (drive ide0-hd0)"] == 1
    assert devs["ide-cd (drive ide2-cd0)"] == 1
    assert devs["isa-serial"] == 1
    assert devs['virtio-blk-pci id "disk0"'] == 1
    assert devs["ich9-ahci"] == 1  # the ide-cd's drive below is not attributed to the controller
