"""Machine profiles in a matrix (``machines:``): crossed with scenarios like accels, ``minimal`` keeping
its ids, and every mistake named by file, line and key."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO
from matrixkit import BASE, ids, line, load_error, write

from harness.config import cells as mx
from harness.config.matrix import load_matrix

ONE = """\
trees:
  bin: {kind: prebuilt, image: other, binary: /usr/bin/qemu-system-x86_64}
scenarios: [boot, cpr-exec]
"""
VIRTIO = """\
machines:
  minimal:
  virtio:
    guest: linux
    vcpus: 2
    ram_mb: 512
    devices: [virtio-blk-raw, virtio-net]
"""


def test_no_machines_means_minimal_and_the_ids_of_earlier_releases(repo: Path) -> None:
    m = load_matrix(write(repo, BASE))
    assert list(m.machines) == ["minimal"]
    assert ids(mx.scenario_cells(m))[:2] == ["a/p1/boot/tcg", "a/p1/boot/kvm"]
    assert all(c.machine_name == "minimal" for c in mx.scenario_cells(m))


def test_machines_are_crossed_with_scenarios_and_named_in_the_id(repo: Path) -> None:
    m = load_matrix(write(repo, ONE + VIRTIO))
    assert ids(mx.scenario_cells(m)) == [
        "bin/prebuilt/boot/tcg",
        "bin/prebuilt/cpr-exec/tcg",
        "bin/prebuilt/virtio/boot/tcg",
        "bin/prebuilt/virtio/cpr-exec/tcg",
    ]
    cell = mx.scenario_cells(m)[-1]
    assert cell.machine_name == "virtio" and cell.machine.vcpus == 2 and cell.machine.ram_mb == 512
    assert cell.machine.devices == ["virtio-blk-raw", "virtio-net"] and cell.scenario == "cpr-exec"
    sel = mx.select(m, ["*/virtio/*"])[1]
    assert ids(sel) == ["bin/prebuilt/virtio/boot/tcg", "bin/prebuilt/virtio/cpr-exec/tcg"]


def test_rules_and_upgrades_take_machines(repo: Path) -> None:
    text = (
        BASE
        + VIRTIO.replace("guest: linux", "guest: linux")
        + (
            "exclude:\n  - {machine: virtio, accel: kvm}\n"
            "upgrades:\n  up:\n    source: b/p1\n    target: a/p1\n    machines: [virtio]\n"
        )
    )
    cells = ids(mx.scenario_cells(load_matrix(write(repo, text))))
    assert (
        "a/p1/virtio/boot/tcg" in cells and "a/p1/virtio/boot/kvm" not in cells and "a/p1/boot/kvm" in cells
    )
    assert "upgrade/up/virtio/normal/tcg" in cells and "upgrade/up/normal/tcg" not in cells
    err, _ = load_error(
        repo, BASE + VIRTIO + "upgrades:\n  up: {source: b/p1, target: a/p1, machines: [big]}\n"
    )
    assert "upgrades.up.machines[0]: unknown machine profile 'big'" in err.message
    err, _ = load_error(repo, BASE + VIRTIO + "exclude:\n  - {machine: big}\n")
    assert "'big' matches no machine" in err.message and "virtio" in (err.hint or "")


def test_an_unknown_device_is_named_with_its_line_and_key(repo: Path) -> None:
    err, text = load_error(repo, ONE + VIRTIO.replace("virtio-net]", "virtio-gpu]"))
    assert (
        f"m.yaml:{line(text, 'devices:')}: machines.virtio.devices[1]: unknown device 'virtio-gpu'"
        in err.message
    )
    assert "virtio-blk-qcow2" in (err.hint or "")  # the fix lists the known devices


def test_kernel_and_initrd_paths_must_exist(repo: Path) -> None:
    (repo / "matrices" / "bzImage").write_bytes(b"\0")
    text = ONE + VIRTIO + "    kernel: bzImage\n    initrd: initrd.gz\n"
    err, src = load_error(repo, text)
    assert f":{line(src, 'initrd: initrd.gz')}: machines.virtio.initrd: file not found: " in err.message
    assert "machines.virtio.kernel" not in err.message  # the kernel exists
    (repo / "matrices" / "initrd.gz").write_bytes(b"\0")
    m = load_matrix(write(repo, text))
    assert m.machines["virtio"].kernel == str((repo / "matrices" / "bzImage").resolve())
    err, _ = load_error(repo, ONE + VIRTIO + "    kernel: bzImage\n")
    assert "machines.virtio.initrd: kernel and initrd are given together" in err.message


def test_what_only_the_linux_guest_takes(repo: Path) -> None:
    text = ONE + "machines:\n  fw:\n    devices: [std-vga]\n    firmware: ovmf\n    kernel: x\n"
    err, _ = load_error(repo, text)
    assert "machines.fw.devices: devices need the Linux guest" in err.message
    assert "machines.fw.firmware: OVMF boots the Linux guest only" in err.message
    assert "machines.fw.kernel: only for 'guest: linux'" in err.message


def test_minimal_is_built_in(repo: Path) -> None:
    err, _ = load_error(repo, ONE + "machines:\n  minimal: {vcpus: 2}\n")
    assert "machines.minimal: 'minimal' is built in and takes no settings" in err.message
    assert "another name" in (err.hint or err.message)
    m = load_matrix(write(repo, ONE + "machines:\n  minimal: {description: today's cells}\n"))
    assert list(m.machines) == ["minimal"]


def test_bad_values_and_names(repo: Path) -> None:
    err, _ = load_error(repo, ONE + "machines:\n  big:\n    guest: windows\n    vcpus: 0\n  'b c': {}\n")
    assert "machines.big.guest" in err.message and "machines.big.vcpus" in err.message
    assert "invalid name 'b c'" in err.message
    err, _ = load_error(repo, ONE + "machines:\n  two:\n    guest: linux\n    devices: [display, display]\n")
    assert "machines.two.devices[1]: device 'display' is listed twice" in err.message


def test_the_devices_matrix() -> None:
    m = load_matrix(REPO / "matrices" / "devices.yaml")
    assert list(m.machines) == ["minimal", "virtio", "ovmf", "display"]
    virtio = m.machines["virtio"]
    assert (virtio.guest, virtio.vcpus, virtio.ram_mb) == ("linux", 2, 512)
    assert virtio.devices == [
        "virtio-blk-raw",
        "virtio-blk-qcow2",
        "virtio-net",
        "virtio-serial",
        "virtio-rng",
    ]
    assert m.machines["ovmf"].firmware == "ovmf" and "display" in m.machines["display"].devices
    cells = ids(mx.scenario_cells(m))
    assert len(cells) == 2 * 4 * 5 * 2
    assert (
        "upstream-10.2/lean/cpr-exec/tcg" in cells and "debian-11.1/prebuilt/ovmf/cpr-transfer/kvm" in cells
    )


def test_a_machines_ram_must_fit_the_scenario_memory(repo: Path) -> None:
    text = ONE + VIRTIO + "settings:\n  scenario_memory_mb: 1024\n"
    err, _ = load_error(repo, text)
    assert (
        "machines.virtio.ram_mb: settings.scenario_memory_mb 1024 MiB cannot hold two guests of 512 MiB"
        in err.message
    )
    assert "at least 1536" in (err.hint or "")
