"""cpr-transfer: hand guest RAM (memfd) and state to a new QEMU over a cpr channel (CPR.rst).

The new QEMU is started first with ``-incoming defer`` plus a ``cpr`` channel; it reads the cpr state
before it even opens its QMP socket. The old QEMU migrates with ``channels`` main + cpr and is then
quit, never continued (``cont`` would make two QEMUs run one guest on the same memory). Both QEMUs map the
same memfd, so the source's RAM digest is taken before ``migrate``: afterwards it would read the
destination's pages and could never differ.
"""

from __future__ import annotations

import asyncio
import json

from harness.live.context import DESTINATION, ScenarioContext
from harness.live.processes import unix_socket_listening


async def run(ctx: ScenarioContext) -> None:
    main_sock, cpr_sock = ctx.run_dir / "migrate.sock", ctx.run_dir / "cpr.sock"
    main = {"transport": "socket", "type": "unix", "path": str(main_sock)}
    cpr = {"transport": "socket", "type": "unix", "path": str(cpr_sock)}
    src = await ctx.boot_source()
    await ctx.set_mode(src, "cpr-transfer")

    # Incoming: new QEMU listening on the cpr channel (its QMP socket appears only after the transfer).
    incoming = ["defer", json.dumps({"channel-type": "cpr", "addr": cpr})]
    dst = await ctx.launch(DESTINATION, ctx.config(DESTINATION, incoming=incoming), connect=False)
    async with ctx.step("wait for the cpr channel to listen", DESTINATION):
        while not unix_socket_listening(cpr_sock):
            if dst.returncode is not None:
                raise dst.exited_error("waiting for its cpr socket")
            await asyncio.sleep(0.01)

    # Outgoing: migrate with both channels; the guest stops at once.
    channels = [{"channel-type": "main", "addr": main}, {"channel-type": "cpr", "addr": cpr}]
    await ctx.ram_digest(src)  # the pattern region is written once at boot: stable while running
    if ctx.faults.cpr_transfer_uri_only:  # test-only: QEMU 11.1.3 aborts the source (bug in cpr.c)
        start = await ctx.migrate(src, {"uri": f"unix:{main_sock}"})
    else:
        start = await ctx.migrate(src, {"channels": channels})

    # Incoming: connect QMP now that it exists, then accept the main channel.
    await ctx.connect(dst)
    async with ctx.step("query-status", DESTINATION):
        await dst.status()  # inmigrate
    await ctx.migrate_incoming(dst, f"unix:{main_sock}")
    await ctx.hooks.at_switchover(ctx, src, start, dst)  # no-op unless a test fault holds it there
    await ctx.wait_migrated(src, start)
    await ctx.wait_migrated(dst)
    await ctx.source_after_migration(src, digest=False)  # postmigrate
    await ctx.destination_resumes(dst)  # running
    await ctx.quit_old(src)  # never `cont` the old QEMU
