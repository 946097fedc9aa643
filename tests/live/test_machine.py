"""Machine profiles as the driver gets them, and the QEMU arguments of their devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.live.argv import VmConfig, build_argv, find_stray_arguments
from harness.live.errors import SpecError
from harness.live.machine import (
    DevicePaths,
    MachineSpec,
    device_args,
    display_device,
    firmware_args,
    needed_models,
)
from harness.live.spec import ScenarioSpec

VIRTIO = {
    "name": "virtio", "guest": "linux", "vcpus": 2, "ram_mb": 512,
    "devices": ["virtio-blk-raw", "virtio-blk-qcow2", "virtio-net", "virtio-serial", "virtio-rng"],
    "kernel": "/guest/vmlinuz", "initrd": "/guest/initrd.img", "firmware_dir": "/guest/fw",
}  # fmt: skip
PATHS = DevicePaths(Path("/tmp/cprh-x"), Path("/work"), Path("/tmp/cprh-x/OVMF_VARS.fd"))


def test_minimal_is_the_default_and_adds_nothing() -> None:
    m = MachineSpec.from_json({})
    assert m.name == "minimal" and not m.linux and m.devices == []
    assert device_args(m, PATHS, set(), "") == []
    assert firmware_args(m, PATHS, Path("/work/guest/fw.bin")) == ["-bios", "/work/guest/fw.bin"]
    assert ScenarioSpec.from_json({"cell_id": "a/b/boot/tcg", "scenario": "boot"}).machine_spec == m


def test_virtio_profile_argv() -> None:
    m = MachineSpec.from_json(VIRTIO)
    args = device_args(m, PATHS, set(), "console=ttyS1")
    text = " ".join(args)
    assert args[:2] == ["-smp", "2"]
    assert "socket,id=console0,path=/tmp/cprh-x/console.sock" in text and "-serial chardev:console0" in text
    assert "-kernel /guest/vmlinuz -initrd /guest/initrd.img -append console=ttyS1" in text
    assert "driver=raw,node-name=disk0,file=file0" in text and "filename=/tmp/cprh-x/disk1.qcow2" in text
    assert "stream,id=net0,server=off,addr.type=unix,addr.path=/tmp/cprh-x/net.sock" in text
    assert "virtserialport,chardev=vport0" in text and "path=/work/vport.log,append=on" in text
    assert "virtio-rng-pci,id=rng0" in text
    cfg = VmConfig("/usr/bin/qemu", Path("/fw"), Path("/work/serial.log"), Path("/q.sock"),
                   firmware_args=firmware_args(m, PATHS, Path("/fw")), machine_args=args)  # fmt: skip
    argv = build_argv(cfg)
    assert find_stray_arguments(argv) == []
    assert argv.index("chardev:serial0") < argv.index("chardev:console0")  # COM1 is the harness's
    assert argv[argv.index("-bios") + 1] == "/guest/fw/bios-256k.bin"


def test_test_faults_swap_the_destination_disk_and_network() -> None:
    m = MachineSpec.from_json(VIRTIO)
    other = DevicePaths(PATHS.run_dir, PATHS.work, PATHS.ovmf_vars, other_disk=True, other_net=True)
    text = " ".join(device_args(m, other, set(), ""))
    assert "filename=/tmp/cprh-x/other-disk0.raw" in text and "filename=/tmp/cprh-x/disk1.qcow2" in text
    assert "addr.path=/tmp/cprh-x/other-net.sock" in text


def test_ovmf_and_display() -> None:
    m = MachineSpec.from_json({**VIRTIO, "firmware": "ovmf", "devices": ["display"]})
    fw = firmware_args(m, PATHS, Path("/unused"))
    assert fw == [
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/guest/fw/OVMF_CODE_4M.fd",
        "-drive", "if=pflash,format=raw,unit=1,file=/tmp/cprh-x/OVMF_VARS.fd",
    ]  # fmt: skip
    assert "qxl-vga,id=display0" in device_args(m, PATHS, {"qxl-vga", "VGA"}, "")
    assert "VGA,id=display0" in device_args(m, PATHS, {"VGA"}, "")
    assert display_device(set()) == "VGA"
    assert needed_models(m, {"VGA"}) == ["VGA"]
    assert needed_models(MachineSpec.from_json(VIRTIO), set()) == [
        "virtio-blk-pci", "virtio-net-pci", "virtio-serial-pci", "virtserialport", "virtio-rng-pci",
    ]  # fmt: skip


def test_paths_with_commas_are_escaped() -> None:
    paths = DevicePaths(Path("/tmp/a,b"), Path("/work"), Path("/tmp/a,b/v.fd"))
    text = " ".join(device_args(MachineSpec.from_json(VIRTIO), paths, set(), ""))
    assert "filename=/tmp/a,,b/disk0.raw" in text and "addr.path=/tmp/a,,b/net.sock" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"guest": "windows"}, "guest 'windows'"),
        ({"memory": "hugepages"}, "memory 'hugepages'"),
        ({"devices": ["virtio-gpu"]}, "devices must be a list of"),
        ({"vcpus": 0}, "vcpus must be"),
        ({"kernel": ""}, "needs kernel, initrd and firmware_dir"),
        ({"colour": "red"}, "unknown machine key(s): colour"),
    ],
)
def test_bad_machine_specs_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MachineSpec.from_json({**VIRTIO, **change})
    with pytest.raises(SpecError):
        ScenarioSpec.from_json(
            {"cell_id": "a/b/boot/tcg", "scenario": "boot", "machine": {**VIRTIO, **change}}
        )
