"""cpr-exec: the old QEMU exec's the new one in the same process, guest RAM (memfd) kept in place (CPR.rst).

``cpr-exec-command`` is the new QEMU's argv plus ``-incoming defer``. After ``migrate`` the QMP connection
drops; the new QEMU's QMP socket is the one in that argv. ``MIGRATION completed`` on the old side is not
final: if the exec fails the old QEMU reports ``failed`` and resumes.
"""

from __future__ import annotations

import asyncio

from harness.live.context import DESTINATION, SOURCE, ScenarioContext
from harness.live.errors import ScenarioFailed


async def run(ctx: ScenarioContext) -> None:
    uri = f"file:{ctx.state_file}"
    src = await ctx.boot_source()
    dst = ctx.qemu(DESTINATION, ctx.config(DESTINATION, incoming=["defer"]))

    # Outgoing: mode cpr-exec + the new argv; RAM digest now (the old process will be gone), migrate.
    await ctx.set_mode(src, "cpr-exec", **{"cpr-exec-command": dst.argv})
    await ctx.ram_digest(src)  # the pattern region is written once at boot: stable while running
    start = await ctx.migrate(src, {"uri": uri})
    async with ctx.step("old QEMU exec's the new one", SOURCE):
        while not dst.qmp_socket.exists():
            failed = [
                e
                for e in src.events[start:]
                if e["event"] == "MIGRATION" and e["data"].get("status") == "failed"
            ]
            if failed:
                raise ScenarioFailed(f"cpr-exec failed in the old QEMU: {await src.cmd('query-migrate')}")
            if src.returncode is not None:
                raise src.exited_error("exec'ing the new QEMU")
            await asyncio.sleep(0.005)
        await src.disconnect()
    ctx.note_state_file()

    # Incoming: the same process now runs the new QEMU; connect, then load the state file.
    dst.adopt(src)
    await ctx.connect(dst)
    async with ctx.step("query-status", DESTINATION):
        await dst.status()  # inmigrate
    await ctx.hooks.between_qemus(ctx, dst)  # test faults only: old QEMU gone, new one not resumed
    await ctx.migrate_incoming(dst, uri)
    await ctx.wait_migrated(dst)
    await ctx.destination_resumes(dst)  # running
