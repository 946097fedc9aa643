"""harness.live: argv building, the stray-argument guard, one QEMU process's end, the leftover scan."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("qemu.qmp")

from harness.live.argv import VmConfig, build_argv, find_stray_arguments  # noqa: E402
from harness.live.processes import describe_exit, leftover_processes  # noqa: E402
from harness.live.qemu import Qemu, QmpLog  # noqa: E402


def _cfg(**kw) -> VmConfig:
    base = dict(binary="/usr/bin/qemu-system-x86_64", firmware=Path("/w/fw.bin"),
                serial_log=Path("/w/serial.log"), qmp_socket=Path("/tmp/r/qmp.sock"),
                mem_path=Path("/dev/shm/ram"))  # fmt: skip
    base.update(kw)
    return VmConfig(**base)


def _value(argv: list[str], opt: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == opt]


def test_plain_ram_for_normal_migration():
    argv = build_argv(_cfg())
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert _value(argv, "-machine") == ["q35"]
    assert _value(argv, "-m") == ["256M"]
    assert "-object" not in argv
    assert "-nodefaults" in argv
    assert _value(argv, "-display") == ["none"]
    assert _value(argv, "-bios") == ["/w/fw.bin"]
    assert _value(argv, "-accel") == ["tcg"]
    assert _value(argv, "-chardev") == ["file,id=serial0,path=/w/serial.log,append=on"]
    assert _value(argv, "-serial") == ["chardev:serial0"]
    assert _value(argv, "-qmp") == ["unix:/tmp/r/qmp.sock,server=on,wait=off"]
    assert "-incoming" not in argv


def test_memfd_ram_for_cpr_transfer_and_exec():
    argv = build_argv(_cfg(ram="memfd", ram_mb=512, accel="kvm"))
    assert _value(argv, "-machine") == ["q35,memory-backend=ram0,aux-ram-share=on"]
    assert _value(argv, "-object") == ["memory-backend-memfd,id=ram0,size=512M,share=on"]
    assert _value(argv, "-accel") == ["kvm"]


def test_named_file_ram_for_cpr_reboot():
    argv = build_argv(_cfg(ram="file"))
    assert _value(argv, "-machine") == ["q35,memory-backend=ram0"]
    assert _value(argv, "-object") == ["memory-backend-file,id=ram0,size=256M,mem-path=/dev/shm/ram,share=on"]
    with pytest.raises(ValueError):
        build_argv(_cfg(ram="file", mem_path=None))
    with pytest.raises(ValueError):
        build_argv(_cfg(ram="hugepages"))


def test_options_data_dirs_incoming_and_extras_in_order():
    cpr = json.dumps({"channel-type": "cpr", "addr": {"transport": "socket", "type": "unix", "path": "/c"}})
    argv = build_argv(
        _cfg(default_devices=True, data_dirs=["/a", "/b"], incoming=["defer", cpr], extra_args=["-S"])
    )
    assert "-nodefaults" not in argv
    assert _value(argv, "-L") == ["/a", "/b"]
    assert _value(argv, "-incoming") == ["defer", cpr]
    assert argv[-1] == "-S"


def test_commas_in_paths_are_escaped():
    argv = build_argv(_cfg(serial_log=Path("/w/a,b.log"), ram="file", mem_path=Path("/dev/shm/x,y")))
    assert _value(argv, "-chardev") == ["file,id=serial0,path=/w/a,,b.log,append=on"]
    assert "mem-path=/dev/shm/x,,y," in _value(argv, "-object")[0]


@pytest.mark.parametrize("ram", ["plain", "memfd", "file"])
def test_built_argv_has_no_stray_arguments(ram):
    cpr = '{"channel-type":"cpr"}'
    assert find_stray_arguments(build_argv(_cfg(ram=ram, data_dirs=["/d"], incoming=["defer", cpr]))) == []


def test_stray_positional_and_empty_arguments_are_found():
    argv = build_argv(_cfg(incoming=["defer"]))
    (positional,) = find_stray_arguments([*argv, "/work/disk.img"])
    assert "'/work/disk.img' is positional" in positional and "-hda" in positional
    (empty,) = find_stray_arguments([*argv, ""])
    assert "empty string" in empty
    assert len(find_stray_arguments([*argv, "-S", "x", "-nodefaults", "", "--no-reboot", "y"])) == 3
    assert find_stray_arguments(["qemu", "-m", "1G", "--nodefaults", "-display", "none"]) == []


def test_leftover_processes_lists_zombies():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            found = [p for p in leftover_processes() if p.startswith(f"{child.pid} ")]
            if found:
                break
            time.sleep(0.02)
        assert found and found[0].endswith(" Z") and "<defunct>" in found[0]
    finally:
        child.wait()
    assert not [p for p in leftover_processes() if p.startswith(f"{child.pid} ")]


def test_stop_escalates_to_sigkill_and_reaps(tmp_path):
    """A process that ignores SIGTERM (and has no QMP) is killed and reaped within the timeouts."""

    async def go() -> tuple[int | None, float]:
        log = QmpLog(tmp_path / "qmp.jsonl")
        vm = Qemu("source", ["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], tmp_path / "q.sock",
                  tmp_path / "stderr.log", log)  # fmt: skip
        vm.start()
        await asyncio.sleep(0.2)
        t = time.monotonic()
        code = await vm.stop(quit_timeout=0.2, term_timeout=0.3)
        log.close()
        return code, time.monotonic() - t

    code, took = asyncio.run(go())
    assert code == -9
    assert took < 5


def test_connect_reports_an_early_exit_with_stderr(tmp_path):
    async def go() -> str:
        vm = Qemu("destination", ["sh", "-c", "echo 'Device needs media, but drive is empty' >&2; exit 1"],
                  tmp_path / "q.sock", tmp_path / "stderr.log", QmpLog(tmp_path / "qmp.jsonl"))  # fmt: skip
        vm.start()
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(vm.connect(), 10)
        vm.kill()
        return str(info.value)

    msg = asyncio.run(go())
    assert "destination QEMU exited (1)" in msg and "Device needs media" in msg


def test_unix_socket_listening_needs_listen_not_just_bind(tmp_path):
    import socket

    from harness.live.processes import unix_socket_listening

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        assert not unix_socket_listening(path)
        s.bind(str(path))
        assert path.exists() and not unix_socket_listening(path)
        s.listen()
        assert unix_socket_listening(path)


def test_describe_exit_names_the_signal():
    assert describe_exit(-6) == "-6, SIGABRT"
    assert describe_exit(1) == "1" and describe_exit(None) == "None" and describe_exit(-999) == "-999"
