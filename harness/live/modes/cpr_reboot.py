"""cpr-reboot: save to a file, quit, start a new QEMU that loads it (docs/devel/migration/CPR.rst).

Guest RAM is a named shared file in /dev/shm (memory-backend-file share=on) and ``x-ignore-shared`` is on
on both sides, so RAM stays in place and the state file holds only device state.
"""

from __future__ import annotations

from harness.live.context import DESTINATION, ScenarioContext


async def run(ctx: ScenarioContext) -> None:
    uri = f"file:{ctx.state_file}"
    src = await ctx.boot_source()

    # Outgoing: mode cpr-reboot, x-ignore-shared, migrate to a file; the guest stops; quit.
    await ctx.set_mode(src, "cpr-reboot")
    await ctx.set_capabilities(src, x_ignore_shared=ctx.faults.ignore_shared)
    start = await ctx.migrate(src, {"uri": uri})
    await ctx.wait_migrated(src, start)
    await ctx.source_after_migration(src)  # postmigrate
    ctx.note_state_file()
    await ctx.quit_old(src)
    await ctx.hooks.between_qemus(ctx)  # test faults only: the RAM file, between the two QEMUs

    # Incoming: new QEMU with -incoming defer, same mode and capability, migrate-incoming the file.
    dst = await ctx.launch(DESTINATION, ctx.config(DESTINATION, incoming=["defer"]))
    async with ctx.step("query-status", DESTINATION):
        await dst.status()  # inmigrate
    await ctx.set_mode(dst, "cpr-reboot")
    await ctx.set_capabilities(dst, x_ignore_shared=ctx.faults.ignore_shared)
    await ctx.migrate_incoming(dst, uri)
    await ctx.wait_migrated(dst)
    await ctx.destination_resumes(dst)  # running
