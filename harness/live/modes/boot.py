"""boot: the baseline. Start the guest, watch it count, check its RAM pattern, quit. No migration."""

from __future__ import annotations

from harness.live.context import ScenarioContext


async def run(ctx: ScenarioContext) -> None:
    src = await ctx.boot_source()
    await ctx.watch(src)
    await ctx.ram_digest(src)
    await ctx.guest_self_check()
    await ctx.quit(src)
