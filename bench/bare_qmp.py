"""A bare QMP script for the bench: the same recipe as the harness's normal / cpr-reboot scenarios
(same QEMU argv shape, same guest, same 1 s watch on each side), without recording, checks or guard
rails. Runs inside the run image: python3 bare_qmp.py MODE QEMU FIRMWARE WORKDIR
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

from qemu.qmp import ConnectError, QMPClient


def argv(qemu: str, fw: str, work: Path, side: str, mode: str) -> list[str]:
    base = [
        qemu,
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-m",
        "128M",
        "-nodefaults",
        "-display",
        "none",
        "-bios",
        fw,
        "-chardev",
        f"file,id=s0,path={work}/serial.log,append=on",
        "-serial",
        "chardev:s0",
        "-qmp",
        f"unix:{work}/{side}.sock,server=on,wait=off",
    ]
    if mode == "cpr-reboot":
        base[2] = "q35,memory-backend=ram0"
        base += ["-object", f"memory-backend-file,id=ram0,size=128M,mem-path=/dev/shm/bare-{side},share=on"]
    return base + (["-incoming", "defer"] if side == "dst" else [])


async def connect(path: Path) -> QMPClient:
    for _ in range(500):
        client = QMPClient("bare")
        try:
            await client.connect(str(path))
            return client
        except ConnectError:
            await asyncio.sleep(0.01)
    raise SystemExit(f"no QMP at {path}")


async def quit_qemu(client: QMPClient) -> None:
    """`quit`; QEMU may close the socket before its reply arrives."""
    with contextlib.suppress(Exception):  # EOF or a disconnect: it is quitting either way
        await client.execute("quit")
    with contextlib.suppress(EOFError):  # the socket closed under the reader: the same race
        await client.disconnect()


async def wait_completed(client: QMPClient) -> None:
    while (await client.execute("query-migrate")).get("status") != "completed":
        await asyncio.sleep(0.01)


async def main(mode: str, qemu: str, fw: str, work: Path) -> None:
    src_proc = subprocess.Popen(argv(qemu, fw, work, "src", mode))
    src = await connect(work / "src.sock")
    await asyncio.sleep(1.0)
    await src.execute("human-monitor-command", {"command-line": "info qtree"})
    uri = f"unix:{work}/mig.sock" if mode == "normal" else f"file:{work}/vm.state"
    dst_proc = None
    if mode == "normal":
        dst_proc = subprocess.Popen(argv(qemu, fw, work, "dst", mode))
        dst = await connect(work / "dst.sock")
        await dst.execute("migrate-incoming", {"uri": uri})
    else:
        await src.execute("migrate-set-parameters", {"mode": "cpr-reboot"})
        await src.execute(
            "migrate-set-capabilities", {"capabilities": [{"capability": "x-ignore-shared", "state": True}]}
        )
    await src.execute("migrate", {"uri": uri})
    await wait_completed(src)
    await quit_qemu(src)
    src_proc.wait()
    if mode == "cpr-reboot":
        dst_proc = subprocess.Popen(argv(qemu, fw, work, "dst", mode))
        dst = await connect(work / "dst.sock")
        await dst.execute("migrate-set-parameters", {"mode": "cpr-reboot"})
        await dst.execute(
            "migrate-set-capabilities", {"capabilities": [{"capability": "x-ignore-shared", "state": True}]}
        )
        await dst.execute("migrate-incoming", {"uri": uri})
    await wait_completed(dst)
    await asyncio.sleep(1.0)
    await dst.execute("human-monitor-command", {"command-line": "info qtree"})
    await quit_qemu(dst)
    assert dst_proc is not None
    dst_proc.wait()


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
    print(f"bare {sys.argv[1]}: {time.monotonic() - started:.2f}s")
