"""Run one scenario to a verdict inside the cell's container: guard rails, the mode's recipe, teardown,
checks. :func:`run_scenario` never leaves a QEMU running, whatever happens (failure, timeout, harness
bug, Ctrl-C), and always returns a :class:`~harness.live.result.ScenarioResult`.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from datetime import UTC, datetime

from harness.live import checks, compat, guest
from harness.live.argv import build_argv, versioned_machine
from harness.live.context import DESTINATION, SOURCE, ScenarioContext
from harness.live.errors import EnvironmentLimit, Refused, ScenarioFailed, Unsupported
from harness.live.faults import Faults
from harness.live.guards import argv_problems, spec_problems
from harness.live.kvm import kvm_problem
from harness.live.machine import device_models, lacking, needed_models
from harness.live.modes import recipe_of
from harness.live.result import ScenarioResult
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import Accel, Verdict


def run_scenario(spec: ScenarioSpec, faults: FaultSpec | None = None) -> ScenarioResult:
    """Run one scenario to a verdict: pass | fail | unsupported | error. No QEMU survives it.

    ``faults`` (tests and ``detect`` only) seeds bugs and may switch the guard rails off."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    accel = Accel(spec.accel)
    why_tcg = ""
    if accel is Accel.KVM:
        why_tcg = spec.kvm_unavailable_reason or kvm_problem()
        accel = Accel.TCG if why_tcg else Accel.KVM
    result = ScenarioResult(
        cell_id=spec.cell_id, scenario=spec.scenario, accel=spec.accel, accel_used=accel,
        reproduce=spec.reproduce, started_at=started_at, machine=spec.machine_spec.name,
    )  # fmt: skip
    hooks = Faults(faults, spec.mode) if faults is not None else None
    ctx = ScenarioContext(spec, accel, faults, hooks)
    if why_tcg:
        ctx.note("accel fallback", f"KVM requested but unusable ({why_tcg}): running under TCG")
    try:
        verdict, reason = asyncio.run(_drive(ctx))
    except KeyboardInterrupt:
        verdict, reason = Verdict.ERROR, "interrupted (KeyboardInterrupt)"
    finally:
        ctx.kill_all()
    obs = ctx.observation()
    ctx.hooks.cleanup()
    started_qemu = any(vm.proc is not None for vm in ctx.vms)
    if started_qemu and verdict is not Verdict.UNSUPPORTED:
        try:
            result.checks = checks.evaluate(obs)
        except Exception as exc:  # a checks bug must not hide the scenario's own outcome
            reason += f" (checks failed to evaluate: {type(exc).__name__}: {exc})"
    if verdict is Verdict.PASS:
        verdict, reason = checks.verdict_of(result.checks)
    elif any(c.name == "sanitizers" and c.verdict == "fail" for c in result.checks):
        # the sanitizer's report first: QEMU's stderr tail in the reason is then the end of that report
        reason = next(c.observed for c in result.checks if c.name == "sanitizers") + "; " + reason
    elif obs.leftover_processes:
        reason += f"; leftover processes: {'; '.join(obs.leftover_processes)}"
    if why_tcg:
        reason += f" [KVM unusable ({why_tcg}): ran under TCG]"
    pause, _ = checks.pause_ms(obs)
    result.verdict, result.reason = verdict, reason
    result.steps, result.qmp = ctx.steps, ctx.qmp.records
    result.logs = {name: rel for name, rel in ctx.logs.items() if (ctx.work / rel).is_file()}
    result.qemu_version = {str(k): v for k, v in ctx.versions.items()}
    result.timings = dict(ctx.timings)
    result.timings["total_s"] = round(time.monotonic() - ctx.t0, 3)
    result.timings["guest_ram_mb"] = float(ctx.ram_mb)  # what the pause is measured against (the machine's)
    if pause is not None:
        result.timings["pause_ms"] = round(pause, 3)
    if result.checks:
        result.figures = checks.figures(obs)
    if ctx.downtime_ms is not None:
        result.timings["downtime_ms"] = ctx.downtime_ms
    if ctx.state_file_bytes is not None:
        result.timings["state_file_bytes"] = float(ctx.state_file_bytes)
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return result


async def _learn_capabilities(ctx: ScenarioContext) -> None:
    """Ask each QEMU of the cell what it supports (live/compat.py): a mode it lacks is ``unsupported``
    in its own words, before any guest starts; an option it lacks is left out of the argv."""
    binaries = dict.fromkeys(b for b in (ctx.spec.src_qemu, ctx.spec.dst_qemu) if b)
    each = ctx.spec.step_timeout_s / (3 * len(binaries))  # a QEMU that hangs is noted, then fails later
    async with ctx.step("probe QEMU capabilities", "harness"):
        found = [await asyncio.to_thread(compat.probe, b, each) for b in binaries]
    for caps in found:
        ctx.note(f"capabilities of {caps.binary}", json.dumps(caps.to_json(), sort_keys=True))
        reason = caps.lacks(ctx.spec.mode)
        if reason:
            raise Unsupported(reason)
    ctx.aux_ram_share = all(caps.aux_ram_share for caps in found)


async def _drive(ctx: ScenarioContext) -> tuple[Verdict, str]:
    """Guard rails, firmware, the mode's recipe, teardown; returns (verdict, reason) before the checks."""
    try:
        try:
            problems = spec_problems(ctx.spec, ctx.faults)
            if problems:
                raise Refused("; ".join(problems))
            await _learn_capabilities(ctx)
            async with ctx.step("build guest firmware", "harness"):
                ctx.firmware = await asyncio.to_thread(guest.build_firmware, ctx.work / "guest")
            if ctx.spec.upgrade:
                async with ctx.step("pin the source's machine type (upgrade)", "harness"):
                    ctx.machine = await asyncio.to_thread(versioned_machine, ctx.spec.src_qemu)
            if ctx.machine_spec.devices:
                async with ctx.step("device models of the QEMU", "harness"):
                    ctx.qemu_devices = await asyncio.to_thread(device_models, ctx.spec.src_qemu)
                    models = needed_models(ctx.machine_spec, ctx.qemu_devices)
                    for binary in dict.fromkeys([ctx.spec.src_qemu, ctx.spec.dst_qemu or ctx.spec.src_qemu]):
                        missing = await asyncio.to_thread(lacking, binary, ctx.machine_spec, models)
                        if missing:
                            raise Unsupported(
                                f"{binary} lacks what machine {ctx.machine_spec.name!r} needs: {missing}"
                            )
            async with ctx.step("guest disks and channels", "harness"):
                await ctx.guest.start(swap_disk=ctx.faults.swap_disk, swap_netdev=ctx.faults.swap_netdev)
            if ctx.faults.guard_rails:
                for side in (SOURCE, DESTINATION):
                    problems += argv_problems(side, build_argv(ctx.config(side, incoming=["defer"])))
                if problems:
                    raise Refused("; ".join(problems))
            await recipe_of(ctx.spec)(ctx)
            await ctx.hooks.after_recipe(ctx)
            return Verdict.PASS, ""
        finally:
            async with ctx.step("teardown", "harness", timeout=60):
                await ctx.teardown()
    except Refused as exc:
        return Verdict.ERROR, f"refused by guard rail: {exc}"
    except Unsupported as exc:
        return Verdict.UNSUPPORTED, str(exc)
    except EnvironmentLimit as exc:
        return Verdict.UNSUPPORTED, f"limit of this host, not of QEMU: {exc}"
    except ScenarioFailed as exc:  # QemuError and StepTimeout included
        return Verdict.FAIL, str(exc)
    except Exception as exc:
        tb = traceback.format_exc(limit=-4).strip().splitlines()
        return Verdict.ERROR, f"harness error: {type(exc).__name__}: {exc} [{' | '.join(tb[-4:])}]"
