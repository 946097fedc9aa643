"""normal: precopy live migration over a unix socket to a destination started with ``-incoming defer``."""

from __future__ import annotations

from harness.live.context import DESTINATION, ScenarioContext


async def run(ctx: ScenarioContext) -> None:
    uri = f"unix:{ctx.run_dir / 'migrate.sock'}"
    src = await ctx.boot_source()

    # Destination: the same argv plus -incoming defer; it listens once told where.
    dst = await ctx.launch(DESTINATION, ctx.config(DESTINATION, incoming=["defer"]))
    async with ctx.step("query-status", DESTINATION):
        await dst.status()  # inmigrate
    await ctx.migrate_incoming(dst, uri)

    # Source: migrate; both sides report MIGRATION completed, then the old QEMU quits.
    start = await ctx.migrate(src, {"uri": uri})
    await ctx.hooks.at_switchover(ctx, src, start, dst)  # no-op unless a test fault holds it there
    await ctx.wait_migrated(src, start)
    await ctx.wait_migrated(dst)
    await ctx.source_after_migration(src)  # postmigrate
    await ctx.destination_resumes(dst)  # running
    await ctx.quit_old(src)
