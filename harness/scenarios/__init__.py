"""Scenarios: one live-update recipe per mode, driven over QMP inside the cell's container.

``python3 -m harness.scenarios SPEC.json OUT.json`` runs one :class:`ScenarioSpec` and writes the
:class:`~harness.results.ScenarioResult` atomically. :func:`run_scenario` never leaves a QEMU running,
whatever happens (failure, timeout, harness bug, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from harness import checks, guest
from harness.results import ScenarioResult
from harness.scenarios import boot, cpr_exec, cpr_reboot, cpr_transfer, faults, normal
from harness.scenarios.context import (
    DESTINATION,
    SOURCE,
    Refused,
    ScenarioContext,
    ScenarioFailed,
    Unsupported,
)
from harness.scenarios.guards import argv_problems, spec_problems
from harness.vm import QemuError, build_argv, versioned_machine

SCENARIOS: dict[str, Callable[[ScenarioContext], Awaitable[None]]] = {
    "boot": boot.run,
    "normal": normal.run,
    "cpr-reboot": cpr_reboot.run,
    "cpr-transfer": cpr_transfer.run,
    "cpr-exec": cpr_exec.run,
}
ACCELS = ("tcg", "kvm")


@dataclass
class ScenarioSpec:
    """Everything the in-container driver needs for one scenario cell (JSON-able)."""

    cell_id: str
    scenario: str  # boot | normal | cpr-reboot | cpr-transfer | cpr-exec
    accel: str = "tcg"  # tcg | kvm (kvm falls back to tcg when /dev/kvm is unusable)
    src_qemu: str = "/usr/bin/qemu-system-x86_64"
    dst_qemu: str = ""  # "" = src_qemu; differs for upgrade cells
    data_dirs: list[str] = field(default_factory=list)  # -L for the source (and destination)
    dst_data_dirs: list[str] | None = None  # -L for the destination when it differs
    workdir: str = "/work"  # logs, state file, firmware cache
    guest_ram_mb: int = 256
    step_timeout_s: float = 60.0
    default_devices: bool = False  # False = -nodefaults
    reproduce: str = ""  # copied into the result
    observe_s: float = 1.0  # how long the guest is watched running on each side
    kvm_unavailable_reason: str = ""  # set by the host runner when it could not lend /dev/kvm
    # ---- test-only faults (all off by default) ----
    guard_rails: bool = True  # False = let configurations through that QEMU silently mishandles
    extra_dst_args: list[str] = field(default_factory=list)  # appended to the destination argv
    shared_ram: bool = True  # False = plain -m RAM even for cpr modes
    kill_source_during_migration: bool = False  # SIGKILL the source before switchover
    # seeded bug classes for the detection campaign (harness.detect); each must make a check fail
    reset_destination: bool = False  # system_reset on the destination right after it resumes
    corrupt_ram: bool = False  # flip guest RAM (pattern region) between source stop and destination resume
    leave_source_running: bool = False  # skip quitting the old QEMU (normal, cpr-reboot, cpr-transfer)
    leave_zombie: bool = False  # leave an unreaped (defunct) child of the driver behind
    ignore_shared: bool = True  # False = cpr-reboot without x-ignore-shared (RAM goes into the state file)
    pause_destination: bool = False  # `stop` the destination right after it resumes
    hang_migration: bool = False  # hold the source at pre-switchover and never continue
    cpr_transfer_uri_only: bool = False  # cpr-transfer `migrate {uri}` without channels (QEMU 11.1 aborts)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScenarioSpec:
        """Build a spec from JSON; raises ValueError naming an unknown or missing key or a bad value."""
        if not isinstance(d, dict):
            raise ValueError("a scenario spec must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown spec key(s): {', '.join(unknown)}")
        missing = [k for k in ("cell_id", "scenario") if k not in d]
        if missing:
            raise ValueError(f"missing spec key(s): {', '.join(missing)}")
        spec = cls(**d)
        if spec.scenario not in SCENARIOS:
            raise ValueError(f"scenario {spec.scenario!r} is not one of {', '.join(SCENARIOS)}")
        if spec.accel not in ACCELS:
            raise ValueError(f"accel {spec.accel!r} is not one of {', '.join(ACCELS)}")
        if not isinstance(spec.guest_ram_mb, int) or spec.guest_ram_mb < 16:
            raise ValueError(
                f"guest_ram_mb must be an integer >= 16 (the guest uses 3 MiB), not {spec.guest_ram_mb!r}"
            )
        for key in ("data_dirs", "extra_dst_args"):
            value = getattr(spec, key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings")
        return spec


def kvm_problem(device: str = "/dev/kvm") -> str:
    """Why KVM cannot be used here ("" = it can)."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{device}: {exc.strerror}"
    os.close(fd)
    return ""


def run_scenario(spec: ScenarioSpec) -> ScenarioResult:
    """Run one scenario to a verdict: pass | fail | unsupported | error. No QEMU survives it."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    accel = spec.accel
    why_tcg = ""
    if accel == "kvm":
        why_tcg = spec.kvm_unavailable_reason or kvm_problem()
        accel = "tcg" if why_tcg else "kvm"
    result = ScenarioResult(
        cell_id=spec.cell_id, scenario=spec.scenario, accel=spec.accel, accel_used=accel,
        reproduce=spec.reproduce, started_at=started_at,
    )  # fmt: skip
    ctx = ScenarioContext(spec, accel)
    if why_tcg:
        ctx.note("accel fallback", f"KVM requested but unusable ({why_tcg}): running under TCG")
    try:
        verdict, reason = asyncio.run(_drive(ctx))
    except KeyboardInterrupt:
        verdict, reason = "error", "interrupted (KeyboardInterrupt)"
    finally:
        ctx.kill_all()
    obs = ctx.observation(spec.scenario)
    faults.reap(ctx.zombie_pid)
    started_qemu = any(vm.proc is not None for vm in ctx.vms)
    if started_qemu and verdict != "unsupported":
        try:
            result.checks = checks.evaluate(obs)
        except Exception as exc:  # a checks bug must not hide the scenario's own outcome
            reason += f" (checks failed to evaluate: {type(exc).__name__}: {exc})"
    if verdict == "pass":
        verdict, reason = checks.verdict_of(result.checks)
    elif obs.leftover_processes:
        reason += f"; leftover processes: {'; '.join(obs.leftover_processes)}"
    if why_tcg:
        reason += f" [KVM unusable ({why_tcg}): ran under TCG]"
    pause, _ = checks.pause_ms(obs)
    result.verdict, result.reason = verdict, reason
    result.steps, result.qmp = ctx.steps, ctx.qmp.records
    result.logs = {name: rel for name, rel in ctx.logs.items() if (ctx.work / rel).is_file()}
    result.qemu_version = dict(ctx.versions)
    result.timings = dict(ctx.timings)
    result.timings["total_s"] = round(time.monotonic() - ctx.t0, 3)
    if pause is not None:
        result.timings["pause_ms"] = round(pause, 3)
    if ctx.downtime_ms is not None:
        result.timings["downtime_ms"] = ctx.downtime_ms
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return result


async def _drive(ctx: ScenarioContext) -> tuple[str, str]:
    """Guard rails, firmware, the mode's recipe, teardown; returns (verdict, reason) before the checks."""
    try:
        try:
            problems = spec_problems(ctx.spec)
            if problems:
                raise Refused("; ".join(problems))
            async with ctx.step("build guest firmware", "harness"):
                ctx.firmware = await asyncio.to_thread(guest.build_firmware, ctx.work / "guest")
            if ctx.spec.dst_qemu and ctx.spec.dst_qemu != ctx.spec.src_qemu:
                async with ctx.step("pin the source's machine type (upgrade)", "harness"):
                    ctx.machine = await asyncio.to_thread(versioned_machine, ctx.spec.src_qemu)
            if ctx.spec.guard_rails:
                for side in (SOURCE, DESTINATION):
                    problems += argv_problems(side, build_argv(ctx.config(side, incoming=["defer"])))
                if problems:
                    raise Refused("; ".join(problems))
            await SCENARIOS[ctx.spec.scenario](ctx)
            if ctx.spec.leave_zombie:
                ctx.zombie_pid = await faults.leave_zombie(ctx)
            return "pass", ""
        finally:
            async with ctx.step("teardown", "harness", timeout=60):
                await ctx.teardown()
    except Refused as exc:
        return "error", f"refused by guard rail: {exc}"
    except Unsupported as exc:
        return "unsupported", str(exc)
    except ScenarioFailed as exc:
        return "fail", str(exc)
    except QemuError as exc:
        return "fail", str(exc)
    except Exception as exc:
        tb = traceback.format_exc(limit=-4).strip().splitlines()
        return "error", f"harness error: {type(exc).__name__}: {exc} [{' | '.join(tb[-4:])}]"
