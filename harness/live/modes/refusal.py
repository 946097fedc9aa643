"""Run one refusal scenario: provoke what QEMU must refuse, then prove the source survived it.

1. Boot the source as the mode's recipe does, with the provocation in its argv if it has one (private
   RAM, ``-sandbox``); a QEMU that cannot even start with that argument is ``unsupported`` in its words.
2. Take the source's evidence (counter, pattern digest, device memory, device tree): the "before".
3. Set up what the refusal needs: a capability turned on in normal mode first (a host or QEMU lacking it
   says so there: ``unsupported``), then the mode and its parameters, then (cpr-transfer) a destination
   listening on its cpr channel exactly as the real recipe starts it.
4. Issue ``migrate``. QEMU refuses with a QMP error, or the migration ends ``failed`` with a message:
   the refusal. A ``completed`` migration is success reported where a refusal was due (for cpr-exec,
   unless ``failed`` follows: a failed exec is reported after ``completed``). A QEMU that dies, or gives
   no outcome within the step timeout, fails the scenario, and the reason says which.
5. The source must run again (it never stops for a QMP refusal; it resumes after a failed exec): then its
   counter, pattern, device memory and device tree are read again, and it quits. The refusal checks
   (:mod:`harness.live.checks.refusal`) compare them with the "before".
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from pathlib import Path

from harness.live import compat
from harness.live.argv import VmConfig
from harness.live.checks.base import RefusalObservation
from harness.live.context import DESTINATION, SOURCE, ScenarioContext
from harness.live.errors import QemuError, QmpCommandError, ScenarioFailed, StepTimeout, Unsupported
from harness.live.migration import capability_args
from harness.live.processes import describe_exit, unix_socket_listening
from harness.live.qemu import Qemu
from harness.live.refusals import Refusal
from harness.live.vocab import Mode, Side

# QAPI's input visitor: an argument of the wrong type or name (the harness's mistake, not QEMU refusing).
OUR_MISTAKE = re.compile(r"Parameter '[^']*' (expects |is unexpected)")
EXEC_GRACE_S = 3.0  # cpr-exec: how long after `completed` a failed exec may still report `failed`
MISSING_BINARY = "/nonexistent/cpr-harness/qemu-system-x86_64"


def provoked(
    ctx: ScenarioContext, refusal: Refusal, side: Side, incoming: list[str] | None = None
) -> VmConfig:
    """The QEMU config of ``side`` with the refusal's provocation (argv only)."""
    cfg = ctx.config(side, incoming=incoming)
    if refusal.private_ram:
        cfg.ram = "plain"
    cfg.extra_args = [*cfg.extra_args, *refusal.source_args]
    return cfg


async def run(ctx: ScenarioContext, refusal: Refusal) -> None:
    cfg = provoked(ctx, refusal, SOURCE)
    if refusal.source_args:
        args = " ".join(refusal.source_args)
        async with ctx.step(f"does QEMU start with {args}", "harness"):
            said = await asyncio.to_thread(compat.start_error, cfg.binary, list(refusal.source_args))
        if said:
            raise Unsupported(f"{cfg.binary} does not start with {args}: {said}")
    src = await ctx.boot_source(cfg)
    await ctx.ram_digest(src)
    ctx.refusal = RefusalObservation(
        refusal.name, refusal.provokes, refusal.documented, before=copy.deepcopy(ctx.obs[SOURCE])
    )
    after = ctx.obs[SOURCE]  # evidence after the refusal is taken anew: a source that died has none
    after.ram_digest, after.device_memory, after.qtree = None, None, None
    if refusal.capability:
        async with ctx.step(f"turn on {refusal.capability} (normal mode)", SOURCE):
            try:
                await src.cmd("migrate-set-capabilities", capability_args([refusal.capability]))
            except QmpCommandError as exc:
                raise Unsupported(
                    f"{ctx.versions.get(SOURCE, 'QEMU')}: cannot turn on {refusal.capability} even in normal "
                    f"mode, so this refusal cannot be provoked: {exc.desc}"
                ) from None
    try:
        refused, where = await _provoke(ctx, refusal, src)
    except StepTimeout as exc:
        raise ScenarioFailed(f"QEMU hung instead of refusing: {exc}") from None
    except QemuError as exc:
        await asyncio.sleep(0.2)  # a dying process is reaped: say how it ended
        if src.returncode is None:
            raise ScenarioFailed(f"QEMU dropped its QMP connection instead of refusing: {exc}") from None
        raise ScenarioFailed(f"QEMU died instead of refusing: {src.exited_error('refusing')}") from None
    ctx.refusal.refused, ctx.refusal.where = refused, where
    await _runs_on(ctx, src)
    await ctx.watch(src)
    await ctx.ram_digest(src)
    async with ctx.step("info qtree (after)", SOURCE):
        ctx.obs[SOURCE].qtree = await src.qtree()
    await ctx.quit(src)


async def _provoke(ctx: ScenarioContext, refusal: Refusal, src: Qemu) -> tuple[str, str]:
    """Set the mode, issue ``migrate``: (QEMU's refusal, where it came) or ScenarioFailed saying why not."""
    params: dict[str, object] = {"mode": str(refusal.mode)}
    new_qmp: Path | None = None
    if refusal.mode is Mode.CPR_EXEC and refusal.exec_command != "none":
        dst = ctx.qemu(DESTINATION, provoked(ctx, refusal, DESTINATION, incoming=["defer"]))
        argv = list(dst.argv)
        if refusal.exec_command == "missing":
            argv[0] = MISSING_BINARY
        params["cpr-exec-command"] = argv
        new_qmp = dst.qmp_socket
    async with ctx.step(f"set mode {refusal.mode}", SOURCE):
        try:
            await src.cmd("migrate-set-parameters", params)
        except QmpCommandError as exc:
            return _refusal(exc), "migrate-set-parameters (QMP error)"
    args = await _migrate_args(ctx, refusal)
    start = len(src.events)
    async with ctx.step("migrate (QEMU must refuse)", SOURCE):
        try:
            await src.cmd("migrate", args)
        except QmpCommandError as exc:
            return _refusal(exc), "migrate (QMP error)"
    async with ctx.step("wait for the migration's outcome", SOURCE):
        status = await src.wait_migration(start)
        if status == "failed":
            return await _error_desc(src), "MIGRATION failed"
        if status == "completed" and refusal.mode is Mode.CPR_EXEC:
            return await _after_exec(src, start, new_qmp)
    raise ScenarioFailed(f"QEMU reported success instead of refusing: MIGRATION {status}")


def _refusal(exc: QmpCommandError) -> str:
    """QEMU's words refusing; a QAPI type error is the harness's own mistake in the arguments, never a
    refusal (it would pass the scenario for the wrong reason): ``error``."""
    if OUR_MISTAKE.match(exc.desc):
        raise HarnessArgumentError(f"the harness sent {exc.command} a malformed argument: {exc.desc}")
    return exc.desc


class HarnessArgumentError(Exception):
    """The harness's own bug (the driver reports any other exception as ``error``)."""


async def _migrate_args(ctx: ScenarioContext, refusal: Refusal) -> dict[str, object]:
    """``migrate``'s arguments; for cpr-transfer, first a destination listening on its cpr channel."""
    if refusal.mode is not Mode.CPR_TRANSFER:
        return {"uri": f"file:{ctx.state_file}"}
    cpr_sock = ctx.run_dir / "cpr.sock"
    cpr = {"transport": "socket", "type": "unix", "path": str(cpr_sock)}
    main_sock = str(ctx.run_dir / "migrate.sock")
    main: dict[str, object] = {"transport": "socket", "type": "unix", "path": main_sock}
    if refusal.main_channel == "file":
        main = {"transport": "file", "filename": str(ctx.state_file), "offset": 0}
    incoming = ["defer", json.dumps({"channel-type": "cpr", "addr": cpr})]
    cfg = provoked(ctx, refusal, DESTINATION, incoming=incoming)
    dst = await ctx.launch(DESTINATION, cfg, connect=False)
    async with ctx.step("wait for the cpr channel to listen", DESTINATION):
        while not unix_socket_listening(cpr_sock):
            if dst.returncode is not None:
                raise dst.exited_error("waiting for its cpr socket")
            await asyncio.sleep(0.01)
    return {"channels": [{"channel-type": "main", "addr": main}, {"channel-type": "cpr", "addr": cpr}]}


async def _error_desc(vm: Qemu) -> str:
    info = await vm.cmd("query-migrate")
    return str(info.get("error-desc") or "(migration failed without an error-desc)")


async def _after_exec(src: Qemu, start: int, new_qmp: Path | None) -> tuple[str, str]:
    """cpr-exec after ``completed``: a failed exec reports ``failed`` next; anything else is success."""
    deadline = time.monotonic() + EXEC_GRACE_S
    while time.monotonic() < deadline:
        if any(e["event"] == "MIGRATION" and e["data"].get("status") == "failed" for e in src.events[start:]):
            return await _error_desc(src), "MIGRATION completed, then failed (the exec)"
        if src.returncode is not None:
            raise src.exited_error("exec'ing the new QEMU")
        if new_qmp is not None and new_qmp.exists():
            raise ScenarioFailed(
                "QEMU reported success instead of refusing: MIGRATION completed and the old QEMU exec'd "
                "the new one (its QMP socket appeared)"
            )
        await asyncio.sleep(0.01)
    raise ScenarioFailed(
        f"QEMU reported success instead of refusing: MIGRATION completed and no failure followed in "
        f"{EXEC_GRACE_S:g} s"
    )


async def _runs_on(ctx: ScenarioContext, src: Qemu) -> None:
    """The source runs the guest again after refusing (it may pass through stopped states first)."""
    state = "?"
    try:
        async with ctx.step("the source runs on after refusing", SOURCE):
            while (state := await src.status()) != "running":
                await asyncio.sleep(0.05)
    except StepTimeout:
        raise ScenarioFailed(f"the source did not run again after refusing (runstate {state})") from None
    except QemuError:
        await asyncio.sleep(0.2)
        raise ScenarioFailed(
            f"the source QEMU ended ({describe_exit(src.returncode)}) after refusing: {src.stderr_tail()}"
        ) from None
