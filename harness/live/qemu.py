"""One QEMU process of a scenario: its QMP session (every message recorded), its end.

Runs inside the scenario container (standard library + ``qemu.qmp`` only). A :class:`Qemu` owns a
``subprocess.Popen`` and a ``qemu.qmp.QMPClient``; every command, reply, error and event goes to a shared
:class:`QmpLog` (events carry QEMU's own timestamp). :meth:`Qemu.stop` ends the process with certainty
(``quit`` -> wait -> SIGTERM -> SIGKILL, always reaped).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecuteError, QMPClient, QMPError

from harness.live.errors import QemuError, QemuExited, QmpCommandError
from harness.live.processes import describe_exit
from harness.live.result import QmpRecord


class QmpLog:
    """Every QMP message of a scenario, both sides, in order; mirrored as JSON lines to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[QmpRecord] = []
        self._file = path.open("a", encoding="utf-8")

    def add(self, side: str, t: float, kind: str, name: str, data: dict[str, Any]) -> None:
        rec = QmpRecord(side=side, t=t, kind=kind, name=name, data=data)
        self.records.append(rec)
        self._file.write(json.dumps({"side": side, "t": t, "kind": kind, "name": name, "data": data}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _Recorder(EventListener):
    """Sees every event as it is dispatched (returns False so nothing queues up)."""

    def __init__(self, vm: Qemu) -> None:
        super().__init__()
        self.vm = vm

    def accept(self, event: Any) -> bool:
        self.vm._on_event(dict(event))
        return False


class Qemu:
    """One QEMU process as seen from one side (for cpr-exec the destination adopts the source's process)."""

    def __init__(self, side: str, argv: list[str], qmp_socket: Path, stderr_path: Path, log: QmpLog) -> None:
        self.side, self.argv, self.qmp_socket, self.stderr_path, self.log = (
            side,
            argv,
            qmp_socket,
            stderr_path,
            log,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: QMPClient | None = None
        self.events: list[dict[str, Any]] = []  # {"event", "data", "t"}
        self.runstates: list[str] = []
        self._event_seen = asyncio.Event()

    # ---- process ----
    def start(self) -> None:
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
            )

    def adopt(self, other: Qemu) -> None:
        """Take over ``other``'s process: after cpr-exec the same PID runs the new QEMU."""
        self.proc = other.proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stderr_tail(self, lines: int = 8) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def exited_error(self, doing: str) -> QemuExited:
        tail = self.stderr_tail()
        return QemuExited(
            f"{self.side} QEMU exited ({describe_exit(self.returncode)}) while {doing}"
            + (f": {tail}" if tail else "")
        )

    async def wait_exit(self, poll: float = 0.02) -> int:
        assert self.proc is not None
        while (code := self.proc.poll()) is None:
            await asyncio.sleep(poll)
        return code

    async def stop(self, quit_timeout: float = 5.0, term_timeout: float = 5.0) -> int | None:
        """quit over QMP -> wait -> SIGTERM -> wait -> SIGKILL; always reaped. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.cmd("quit"), quit_timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_exit(), quit_timeout)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_exit(), term_timeout)
        self.kill()
        await self.disconnect()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (if still running) and reap; synchronous: safe in ``finally`` and without a loop."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    # ---- QMP ----
    async def connect(self, retry: float = 0.01) -> None:
        """Connect to the QMP socket (retrying until it accepts), then enable the ``events`` capability."""
        while True:
            if self.returncode is not None:
                raise self.exited_error("waiting for its QMP socket")
            if self.qmp_socket.exists():
                client = QMPClient(f"cprharness-{self.side}")
                client.register_listener(_Recorder(self))
                try:
                    await client.connect(str(self.qmp_socket))
                except (QMPError, OSError):
                    with contextlib.suppress(Exception):
                        await client.disconnect()
                else:
                    self.client = client
                    break
            await asyncio.sleep(retry)
        await self.cmd(
            "migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]}
        )

    async def disconnect(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            with contextlib.suppress(Exception):
                await client.disconnect()

    def _on_event(self, msg: dict[str, Any]) -> None:
        ts = msg.get("timestamp") or {}
        t = ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6 if ts else time.time()
        ev = {"event": msg.get("event", "?"), "data": msg.get("data") or {}, "t": t}
        self.events.append(ev)
        self.log.add(self.side, t, "event", ev["event"], ev["data"])
        self._event_seen.set()

    async def cmd(self, name: str, args: dict[str, Any] | None = None, *, record_reply: bool = True) -> Any:
        """Execute a QMP command; raises QmpCommandError (QEMU said no) or QemuExited (connection lost)."""
        if self.client is None:
            raise QemuError(f"{self.side}: no QMP connection for {name}")
        self.log.add(self.side, time.time(), "command", name, {"arguments": args or {}})
        try:
            ret = await self.client.execute(name, args)
        except ExecuteError as exc:
            err = {"class": exc.error_class, "desc": str(exc)}
            self.log.add(self.side, time.time(), "error", name, err)
            raise QmpCommandError(self.side, name, exc.error_class, str(exc)) from None
        except (QMPError, OSError, EOFError) as exc:
            self.log.add(
                self.side, time.time(), "error", name, {"class": type(exc).__name__, "desc": str(exc)}
            )
            if name == "quit":
                return None
            await asyncio.sleep(0.2)  # let a dying process be reaped, to say why
            raise (
                self.exited_error(f"executing {name}")
                if self.returncode is not None
                else QemuError(f"{self.side}: QMP connection lost during {name}: {type(exc).__name__}: {exc}")
            ) from None
        self.log.add(self.side, time.time(), "reply", name, {"return": ret if record_reply else "(omitted)"})
        return ret

    async def hmp(self, line: str) -> str:
        return str(await self.cmd("human-monitor-command", {"command-line": line}))

    async def status(self) -> str:
        status = str((await self.cmd("query-status"))["status"])
        if not self.runstates or self.runstates[-1] != status:
            self.runstates.append(status)
        return status

    async def version(self) -> str:
        v = await self.cmd("query-version")
        q = v["qemu"]
        package = str(v.get("package") or "").strip()
        return f"{q['major']}.{q['minor']}.{q['micro']}" + (f" {package}" if package else "")

    async def migration_modes(self) -> list[str] | None:
        """Values of the MigMode enum from query-qmp-schema (None if QEMU has no such enum)."""
        for entry in await self.cmd("query-qmp-schema", record_reply=False):
            if entry.get("meta-type") == "enum" and "cpr-reboot" in (entry.get("values") or []):
                return list(entry["values"])
        return None

    async def read_u32(self, addr: int) -> int:
        out = await self.hmp(f"xp /1wx {addr:#x}")
        m = re.search(r":\s*0x([0-9a-fA-F]+)", out)
        if not m:
            raise QemuError(f"{self.side}: cannot parse xp output {out!r}")
        return int(m.group(1), 16)

    async def ram_sha256(self, addr: int, length: int, dump: Path) -> str:
        """sha256 of guest-physical ``[addr, addr+length)`` via pmemsave (the dump is deleted)."""
        await self.cmd("pmemsave", {"val": addr, "size": length, "filename": str(dump)})
        try:
            return hashlib.sha256(dump.read_bytes()).hexdigest()
        finally:
            with contextlib.suppress(OSError):
                dump.unlink()

    async def qtree(self) -> str:
        return (await self.hmp("info qtree")).replace("\r\n", "\n")

    async def wait_event(self, match: Callable[[dict[str, Any]], bool], start: int = 0) -> dict[str, Any]:
        """First event from index ``start`` on that ``match``es; QemuExited if the process ends first."""
        i = start
        while True:
            while i < len(self.events):
                if match(self.events[i]):
                    return self.events[i]
                i += 1
            if self.returncode is not None:
                raise self.exited_error("waiting for an event")
            self._event_seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event_seen.wait(), 0.1)

    async def wait_migration(self, start: int = 0) -> str:
        """Wait for a final MIGRATION status (completed/failed/cancelled) and return it."""
        ev = await self.wait_event(
            lambda e: (
                e["event"] == "MIGRATION" and e["data"].get("status") in ("completed", "failed", "cancelled")
            ),
            start,
        )
        return str(ev["data"]["status"])
