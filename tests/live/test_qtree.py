"""Device trees across QEMU versions: new property lines are tolerated, device or value changes are not."""

from __future__ import annotations

from harness.live import checks, qtree

SOURCE = """bus: main-system-bus
  type System
  dev: q35-pcihost, id ""
    bus: pcie.0
      type PCIE
      dev: ich9-ahci, id ""
        addr = 1f.2
        bus: ide.0
          type IDE
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
"""


def _newer(text: str) -> str:
    return text.replace("        addr = 1f.2\n", '        addr = 1f.2\n        sriov-pf = ""\n')


def test_new_property_lines_are_not_a_device_change() -> None:
    diff = qtree.compare_versions(SOURCE, _newer(SOURCE))
    assert diff.same_devices and diff.added == ['dev: ich9-ahci, id "": sriov-pf']


def test_extra_disk_is_a_structure_change_even_across_versions() -> None:
    grown = _newer(SOURCE).replace(
        "        bus: ide.0\n          type IDE\n",
        "        bus: ide.0\n          type IDE\n"
        '          dev: ide-hd, id ""\n            drive = "ide0-hd0"\n',
    )
    diff = qtree.compare_versions(SOURCE, grown)
    assert not diff.same_devices
    assert any("extra dev: ide-hd" in line for line in diff.structure)


def test_changed_value_is_caught() -> None:
    diff = qtree.compare_versions(SOURCE, SOURCE.replace("addr = 1f.2", "addr = 1e.0"))
    assert diff.changed == ['dev: ich9-ahci, id "": addr 1f.2 -> 1e.0'] and not diff.same_devices


def test_duplicate_siblings_are_kept_apart() -> None:
    two = SOURCE + '  dev: port, id ""\n    chassis = 1\n  dev: port, id ""\n    chassis = 2\n'
    swapped = SOURCE + '  dev: port, id ""\n    chassis = 1\n  dev: port, id ""\n    chassis = 3\n'
    assert qtree.compare_versions(two, two).same_devices
    assert qtree.compare_versions(two, swapped).changed == ['dev: port, id "" #2: chassis 2 -> 3']


def _obs(src: str, dst: str, upgrade: bool) -> checks.Observation:
    side = checks.SideObservation
    return checks.Observation(
        mode="normal",
        serial_log="",
        source=side("source", qtree=src),
        destination=side("destination", qtree=dst),
        guest_ram_bytes=1 << 28,
        upgrade=upgrade,
    )


def test_device_tree_check_is_strict_for_one_binary_and_tolerant_across_versions() -> None:
    assert checks.check_device_tree(_obs(SOURCE, _newer(SOURCE), upgrade=False)).verdict == "fail"
    passed = checks.check_device_tree(_obs(SOURCE, _newer(SOURCE), upgrade=True))
    assert passed.verdict == "pass" and "1 new" in passed.observed
    grown = SOURCE + '  dev: ide-hd, id ""\n'
    assert checks.check_device_tree(_obs(SOURCE, grown, upgrade=True)).verdict == "fail"


def test_qemu_7_2_info_qtree_parses_like_current_ones() -> None:
    """Real `info qtree` of bookworm's QEMU 7.2 (q35, -nodefaults), as the driver read it."""
    from conftest import DATA

    from harness.live.checks.devices import qtree_devices

    text = (DATA / "qtree" / "qemu-7.2.0-q35-nodefaults.txt").read_text()
    nodes = qtree.parse(text)
    devices = [path for path in nodes if path[-1].startswith("dev: ")]
    assert len(devices) == 31 == sum(qtree_devices(text).values())
    hpet = next(props for path, props in nodes.items() if path[-1] == 'dev: hpet, id ""')
    assert hpet["timers"] == "3 (0x3)" and "mmio" not in hpet  # "mmio a/b" lines are not properties
    assert qtree.compare_versions(text, text).same_devices
    newer = qtree.compare_versions(
        text, text.replace("    timers = 3 (0x3)\n", "    timers = 3 (0x3)\n    x-new = 1\n")
    )
    assert newer.same_devices and newer.added == ['dev: hpet, id "": x-new']
