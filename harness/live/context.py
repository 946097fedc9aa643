"""The mechanics every scenario shares: timed steps, the two QEMUs, what is observed of them, teardown.

A mode module (``modes/normal.py``, ``modes/cpr_exec.py``, ...) only states its recipe in terms of this
class; everything it sees of QEMU lands in the per-side :class:`~harness.live.checks.SideObservation`.
:class:`Hooks` names the points where a test fault may act; the production default does nothing, and
:mod:`harness.live.faults` implements them (this module does not import it).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from harness.live import migration, sanitizers
from harness.live.argv import VmConfig, build_argv
from harness.live.checks import Observation, SideObservation
from harness.live.checks.base import RefusalObservation
from harness.live.errors import QemuError, QmpCommandError, ScenarioFailed, StepTimeout, Unsupported
from harness.live.guest.session import GuestSession
from harness.live.kvm import stopped_guest
from harness.live.processes import leftover_processes
from harness.live.qemu import Qemu, QmpLog
from harness.live.result import Step
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import Mode, Side

SOURCE, DESTINATION = Side.SOURCE, Side.DESTINATION
WATCH_PATIENCE = 10  # see ScenarioContext.watch
# How QEMU words "this build has no such migration mode / parameter".
_UNSUPPORTED_TEXTS = ("does not accept value", "is unexpected")


class Hooks:
    """Where a seeded fault may act in a recipe. Every hook here does nothing (production)."""

    def needs_pause_before_switchover(self) -> bool:
        return False

    async def after_migrate(self, ctx: ScenarioContext, src: Qemu, start: int) -> None:
        """Right after ``migrate`` was issued on the source."""

    async def at_switchover(self, ctx: ScenarioContext, src: Qemu, start: int, dst: Qemu) -> None:
        """The source paused at pre-switchover (only when :meth:`needs_pause_before_switchover`)."""

    async def between_qemus(self, ctx: ScenarioContext, vm: Qemu | None = None) -> None:
        """The old QEMU has stopped the guest, the new one has not resumed it (``vm``: the new one)."""

    async def after_resume(self, ctx: ScenarioContext, dst: Qemu) -> None:
        """The destination has just reached ``running``."""

    def keeps_old_running(self) -> bool:
        return False

    async def after_recipe(self, ctx: ScenarioContext) -> None:
        """The recipe finished; teardown follows."""

    def cleanup(self) -> None:
        """After the observation was taken (synchronous, always called)."""


class ScenarioContext:
    def __init__(
        self, spec: ScenarioSpec, accel: str, faults: FaultSpec | None = None, hooks: Hooks | None = None
    ) -> None:
        self.spec, self.accel = spec, accel
        self.faults = faults or FaultSpec()
        self.hooks = hooks or Hooks()
        self.work = Path(spec.workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.steps: list[Step] = []
        self.timings: dict[str, float] = {}
        self.versions: dict[str, str] = {}
        self.logs: dict[str, str] = {"serial": "serial.log", "qmp": "qmp.jsonl"}
        self.serial_log = self.work / "serial.log"
        self.state_file = self.work / "vmstate.bin"
        # a reused work dir must not leak an earlier run into this one (the serial log is append=on)
        for stale in (self.serial_log, self.state_file, self.work / "qmp.jsonl", *self.work.glob("stderr-*")):
            stale.unlink(missing_ok=True)
        self.qmp = QmpLog(self.work / "qmp.jsonl")
        # unix socket paths must stay short (108 bytes), so they live in a private /tmp folder
        self.run_dir = Path(tempfile.mkdtemp(prefix="cprh-"))
        self.shm_file = Path("/dev/shm") / f"cprguest-{self.run_dir.name}.ram"
        self.vms: list[Qemu] = []
        self.obs: dict[str, SideObservation] = {s: SideObservation(s) for s in (SOURCE, DESTINATION)}
        self.firmware: Path | None = None
        self.machine = "q35"  # pinned to the source's versioned type for upgrade cells
        self.aux_ram_share = True  # False when a QEMU of the cell lacks the option (live/compat.py)
        self.state_file_bytes: int | None = None
        self.downtime_ms: float | None = None
        self.migrate_started: float | None = None  # monotonic time of the `migrate` command
        self.zombie_pid: int | None = None  # test fault leave_zombie (reaped after the observation)
        self.machine_spec = spec.machine_spec
        self.options = spec.migration_options
        self.guest = GuestSession(self.machine_spec, self.run_dir, self.work)
        self.logs.update(self.guest.logs())  # the Linux guest's console and virtio-serial port
        self.qemu_devices: set[str] = set()  # the source QEMU's device models (profiles with a display)
        self.refusal: RefusalObservation | None = None  # set by a refusal scenario (harness.live.refusals)

    # ---- steps ----
    @contextlib.asynccontextmanager
    async def step(self, name: str, side: str = "", timeout: float | None = None) -> AsyncIterator[None]:
        """Time a step; past its timeout it fails the scenario with "timeout in step <name>"."""
        started, ok, detail = time.monotonic(), False, ""
        try:
            async with asyncio.timeout(timeout or self.spec.step_timeout_s):
                yield
            ok = True
        except TimeoutError:
            detail = f"timeout after {timeout or self.spec.step_timeout_s:g} s"
            raise StepTimeout(f"timeout in step {name!r} ({side or 'harness'}, {detail})") from None
        except BaseException as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.steps.append(
                Step(
                    name, side, round(started - self.t0, 4), round(time.monotonic() - started, 4), ok, detail
                )
            )

    def note(self, name: str, detail: str) -> None:
        """A zero-length step recording a decision (e.g. the KVM -> TCG fallback)."""
        self.steps.append(Step(name, "harness", round(time.monotonic() - self.t0, 4), 0.0, True, detail))

    # ---- QEMU processes ----
    def ram_kind(self) -> str:
        if not self.faults.shared_ram:
            return "plain"
        if self.machine_spec.memory != "auto":
            return self.machine_spec.memory
        if self.spec.mode in (Mode.BOOT, Mode.NORMAL):
            return "plain"
        return "file" if self.spec.mode is Mode.CPR_REBOOT else "memfd"

    @property
    def ram_mb(self) -> int:
        return self.machine_spec.ram_mb or self.spec.guest_ram_mb

    def config(self, side: Side, incoming: list[str] | None = None) -> VmConfig:
        assert self.firmware is not None
        dst = side == DESTINATION
        data_dirs = list(
            self.spec.dst_data_dirs if dst and self.spec.dst_data_dirs is not None else self.spec.data_dirs
        )
        swap = (self.faults.swap_disk, self.faults.swap_netdev) if dst else (False, False)  # test faults
        firmware, devices = self.guest.argv(self.firmware, self.qemu_devices, *swap)
        return VmConfig(
            binary=(self.spec.dst_qemu or self.spec.src_qemu) if dst else self.spec.src_qemu,
            firmware=self.firmware,
            machine=self.machine,
            serial_log=self.serial_log,
            qmp_socket=self.run_dir / f"qmp-{side}.sock",
            ram_mb=self.ram_mb,
            accel=self.accel,
            ram=self.ram_kind(),
            file_aux=self.spec.mode in (Mode.CPR_TRANSFER, Mode.CPR_EXEC),
            mem_path=self.shm_file,
            aux_ram_share=self.aux_ram_share,
            data_dirs=[self.machine_spec.firmware_dir, *data_dirs] if self.guest.linux else data_dirs,
            default_devices=self.spec.default_devices,
            incoming=incoming or [],
            extra_args=list(self.faults.extra_dst_args) if dst else [],
            firmware_args=firmware,
            machine_args=devices,
        )

    def qemu(self, side: Side, cfg: VmConfig) -> Qemu:
        """A Qemu object for ``side`` (not started); its stderr will go to ``stderr-<side>.log``."""
        vm = Qemu(side, build_argv(cfg), cfg.qmp_socket, self.work / f"stderr-{side}.log", self.qmp)
        self.vms.append(vm)
        return vm

    async def launch(self, side: Side, cfg: VmConfig, *, connect: bool = True) -> Qemu:
        vm = self.qemu(side, cfg)
        async with self.step(f"start {side} QEMU", side):
            vm.start()
            self.logs[f"stderr-{side}"] = vm.stderr_path.name
        if connect:
            await self.connect(vm)
        return vm

    async def connect(self, vm: Qemu) -> None:
        async with self.step("connect QMP, enable events", vm.side):
            await vm.connect()
            self.versions[vm.side] = await vm.version()

    async def boot_source(self, cfg: VmConfig | None = None) -> Qemu:
        """Start the source (``cfg``, default: :meth:`config`), wait until the guest has written its pattern
        and counts, watch it run."""
        src = await self.launch(SOURCE, cfg or self.config(SOURCE))
        layout = self.guest.layout
        async with self.step("guest boots and counts", SOURCE):
            polls = 0
            while await src.read_u32(layout.magic_addr) != layout.magic:
                polls += 1
                if polls % 10 == 0 and (problem := stopped_guest(await src.status(), self.accel, src)):
                    raise problem
                await asyncio.sleep(0.05)
        self.timings["setup_s"] = round(time.monotonic() - self.t0, 3)
        await self.watch(src)
        async with self.step("info qtree (before)", SOURCE):
            self.obs[SOURCE].qtree = await src.qtree()
        return src

    async def watch(self, vm: Qemu, seconds: float | None = None) -> None:
        """query-status and the guest counter, then again after ``seconds`` of running. A running guest
        whose counter has not moved yet is given up to :data:`WATCH_PATIENCE` times as long (a loaded
        host may not run its vCPUs for a few seconds): a stuck guest still ends unmoved."""
        wait = self.spec.observe_s if seconds is None else seconds
        async with self.step("watch the guest run", vm.side):
            await self.observe(vm)
            await asyncio.sleep(wait)
            counters, first = self.obs[vm.side].counters, self.obs[vm.side].counters[-1]
            deadline = time.monotonic() + WATCH_PATIENCE * wait
            while await vm.status() == "running" and time.monotonic() < deadline:
                if await vm.read_u32(self.guest.layout.counter_addr) != first:
                    break
                await asyncio.sleep(0.2)
            await self.observe(vm)
            if counters[-1] == first and len(counters) >= 2:
                self.note(
                    "guest counter did not move", f"{vm.side}: {first} for {wait * (1 + WATCH_PATIENCE):g} s"
                )

    async def observe(self, vm: Qemu) -> str:
        status = await vm.status()
        self.obs[vm.side].counters.append(await vm.read_u32(self.guest.layout.counter_addr))
        return status

    async def ram_digest(self, vm: Qemu) -> None:
        """The pattern region's digest, and the device memory's (both where the guest does not write)."""
        layout = self.guest.layout
        async with self.step("pmemsave pattern region", vm.side):
            self.obs[vm.side].ram_digest = await vm.ram_sha256(
                layout.pattern_addr, layout.pattern_len, self.work / f"pattern-{vm.side}.bin"
            )
        async with self.step("pmemsave device memory", vm.side):
            self.obs[vm.side].device_memory = await self.guest.device_memory(vm, self.serial_log)

    async def guest_self_check(self) -> None:
        """The Linux guest reads back what it wrote and says so on COM1 (nothing for the firmware guest)."""
        if self.guest.linux:
            async with self.step("guest self-check", "guest", timeout=90):
                await self.guest.self_check(self.serial_log)

    async def set_mode(self, vm: Qemu, mode: str, **params: Any) -> None:
        """migrate-set-parameters mode (+ params); a QEMU without the mode -> Unsupported with its text."""
        async with self.step(f"set mode {mode}", vm.side):
            try:
                await vm.cmd("migrate-set-parameters", {"mode": mode})
                if params:
                    await vm.cmd("migrate-set-parameters", params)
            except QmpCommandError as exc:
                if not any(t in exc.desc for t in _UNSUPPORTED_TEXTS):
                    raise
                modes = await vm.migration_modes()
                known = f" (its MigMode values: {', '.join(modes)})" if modes else ""
                raise Unsupported(f"{self.versions.get(vm.side, 'QEMU')}: {exc.desc}{known}") from None

    async def set_capabilities(self, vm: Qemu, **caps: bool) -> None:
        async with self.step(f"set capabilities {', '.join(caps)}", vm.side):
            arg = [{"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()]
            await vm.cmd("migrate-set-capabilities", {"capabilities": arg})

    async def migration_options(self, vm: Qemu) -> None:
        """The cell's option set on ``vm`` (nothing for the default set); QEMU refusing it: Unsupported."""
        if not self.options.default:
            async with self.step(f"option set {self.options.name}", vm.side):
                await migration.apply(vm, self.options, self.versions.get(vm.side, "QEMU"))

    async def migrate(self, src: Qemu, args: dict[str, Any]) -> int:
        """Issue ``migrate`` (after the option set); returns the index of the source's next event."""
        if self.hooks.needs_pause_before_switchover():
            await self.set_capabilities(src, pause_before_switchover=True)
        await self.migration_options(src)
        start = len(src.events)
        async with self.step("migrate", SOURCE):
            self.migrate_started = time.monotonic()
            await migration.command(src, self.options, self.versions.get(SOURCE, "QEMU"), "migrate", args)
        await self.hooks.after_migrate(self, src, start)
        return start

    async def migrate_incoming(self, dst: Qemu, uri: str) -> None:
        """``migrate-incoming`` on the destination, after the option set."""
        await self.migration_options(dst)
        async with self.step("migrate-incoming", DESTINATION):
            version = self.versions.get(DESTINATION, "QEMU")
            await migration.command(dst, self.options, version, "migrate-incoming", {"uri": uri})

    async def state_of(self, vm: Qemu) -> str:
        """The runstate, or why it could not be read (for messages; never raises)."""
        try:
            return await asyncio.wait_for(vm.status(), 5)
        except (QemuError, TimeoutError) as exc:
            return f"unknown state ({exc})"

    async def wait_migrated(self, vm: Qemu, start: int = 0) -> None:
        """Wait for the final MIGRATION status on ``vm``; anything but completed fails the scenario."""
        async with self.step("wait for MIGRATION completed", vm.side):
            status = await vm.wait_migration(start)
            if status != "completed":
                info = await vm.cmd("query-migrate")
                raise ScenarioFailed(
                    f"{vm.side}: migration {status}: {info.get('error-desc', '(no error-desc)')}"
                )

    async def source_after_migration(self, src: Qemu, digest: bool = True) -> None:
        """The stopped source: runstate, last counter, QEMU's downtime, RAM digest (unless ``digest`` is
        False: a mode whose source shares its RAM with the destination digests it before ``migrate``)."""
        async with self.step("source after migration", SOURCE):
            while await src.status() == "finish-migrate":  # `completed` is announced just before postmigrate
                await asyncio.sleep(0.01)
            await self.observe(src)
            info = await src.cmd("query-migrate")
            if "downtime" in info:
                self.downtime_ms = float(info["downtime"])
        if digest:
            await self.ram_digest(src)

    async def destination_resumes(self, dst: Qemu) -> None:
        """The destination runs the guest on: runstate running, counter advancing, RAM and device tree."""
        async with self.step("destination reaches running", DESTINATION):
            while await dst.status() != "running":
                await asyncio.sleep(0.02)
        if self.migrate_started is not None:
            self.timings["switch_s"] = round(time.monotonic() - self.migrate_started, 3)
        await self.hooks.after_resume(self, dst)
        await self.watch(dst)
        await self.ram_digest(dst)
        async with self.step("info qtree (after)", DESTINATION):
            self.obs[DESTINATION].qtree = await dst.qtree()
        await self.guest_self_check()

    async def quit(self, vm: Qemu) -> None:
        async with self.step("quit", vm.side):
            self.obs[vm.side].exit_code = await vm.stop()

    async def quit_old(self, src: Qemu) -> None:
        """Quit the old QEMU after the switch (unless a test fault keeps it alive)."""
        if self.hooks.keeps_old_running():
            self.note("old QEMU left running (test fault)", f"pid {src.pid}")
            return
        await self.quit(src)

    def note_state_file(self) -> None:
        """The bytes the state file holds: a sparse file (mapped-ram lays RAM blocks out at fixed offsets,
        1 MiB-aligned) counts its allocated blocks, a dense one its size."""
        if self.state_file.exists():
            st = self.state_file.stat()
            self.state_file_bytes = min(st.st_size, st.st_blocks * 512)

    # ---- teardown and the observation ----
    async def teardown(self) -> None:
        """Stop every QEMU still running (quit, then signals); record exit codes."""
        for vm in reversed(self.vms):
            if vm.proc is None:
                continue
            was_running = vm.returncode is None
            try:
                await asyncio.wait_for(vm.stop(), 15)
            except Exception as exc:  # keep going: every QEMU must end
                self.note(f"teardown of {vm.side} QEMU", f"{type(exc).__name__}: {exc}; killed")
            finally:
                vm.kill()
            side = self.obs[vm.side]
            # A source still running here stays exit_code None ("alive at teardown"): the recipe should
            # have quit it (process-hygiene). The destination's exit code from this stop is recorded.
            recordable = vm.side != SOURCE or not was_running
            if side.exit_code is None and vm.proc.returncode is not None and recordable:
                side.exit_code = vm.proc.returncode
        await self.guest.close()

    def kill_all(self) -> None:
        """Last resort, synchronous: SIGKILL and reap every QEMU, remove temporary files."""
        for vm in self.vms:
            vm.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.shm_file.unlink()
        with contextlib.suppress(OSError):
            self.qmp.close()

    def observation(self) -> Observation:
        for side, o in self.obs.items():
            vms = [vm for vm in self.vms if vm.side == side]
            o.runstates = [s for vm in vms for s in vm.runstates]
            o.runstates = [s for i, s in enumerate(o.runstates) if i == 0 or o.runstates[i - 1] != s]
            o.events = [e for vm in vms for e in vm.events]
        src = self.obs[SOURCE]
        completed = [i for i, e in enumerate(src.events) if _is_completed(e)]
        src.resumed_after_migration = bool(completed) and any(
            e["event"] == "RESUME" for e in src.events[completed[0] :]
        )
        serial = self.serial_log.read_text(errors="replace") if self.serial_log.exists() else ""
        mode = self.spec.mode
        return Observation(
            mode=mode,
            serial_log=serial,
            source=src,
            destination=None if mode is Mode.BOOT else self.obs[DESTINATION],
            guest_ram_bytes=self.ram_mb * 1024 * 1024,
            state_file_bytes=self.state_file_bytes,
            rom_bytes=self.guest.rom_bytes or 0,
            downtime_ms=self.downtime_ms,
            upgrade=self.spec.upgrade,
            leftover_processes=leftover_processes(),
            guest=self.guest.observe(serial),
            refusal=self.refusal,
            qemu_stderr=sanitizers.stderr_logs(vm.stderr_path for vm in self.vms),
        )


def _is_completed(e: dict[str, Any]) -> bool:
    return bool(e["event"] == "MIGRATION" and e["data"].get("status") == "completed")
