"""What the QEMU under test supports, learnt from QEMU itself before a scenario starts.

Old QEMUs (6.x to 8.x, upstream or forked) speak an older QMP: no ``mode`` migration parameter before
8.2, no ``cpr-transfer`` before 10.0, no ``aux-ram-share`` machine option before 10.0, no ``cpr-exec``
before 10.2. Rather than a table of version numbers (forks backport and drop features), the driver asks
the binary:

- ``-machine q35,help``: the machine's options (is there ``aux-ram-share``?);
- a short QMP session on ``-machine none`` over stdio: ``query-version``, ``query-qmp-schema`` (the
  ``MigMode`` enum, if any) and ``migrate-set-parameters {"mode": M}`` for each CPR mode, whose error is
  QEMU's own text for "this QEMU has no such mode".

:func:`probe` returns :class:`Capabilities`; :meth:`Capabilities.lacks` says, in QEMU's words, why a mode
cannot run on this binary (the verdict is then ``unsupported``, never ``error``). Standard library only.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Any

CPR_MODES = ("cpr-reboot", "cpr-transfer", "cpr-exec")
PROBE_TIMEOUT_S = 60.0


class ProbeError(Exception):
    """The binary could not be asked (it did not start, or did not speak QMP)."""


@dataclass
class Capabilities:
    """What one QEMU binary supports, as it said itself."""

    binary: str
    version: str = ""  # "7.2.19 Debian ..." (query-version)
    mig_modes: list[str] | None = None  # MigMode values; None: the QEMU has no MigMode enum (< 8.2)
    mode_errors: dict[str, str] = field(default_factory=dict)  # mode -> QEMU's error for setting it
    machine_options: set[str] = field(default_factory=set)  # options of -machine q35
    notes: list[str] = field(default_factory=list)  # what the probe could not learn, and why

    @property
    def aux_ram_share(self) -> bool:
        """``-machine aux-ram-share=on`` exists (QEMU >= 10.0). Unknown options (probe failed): assume yes."""
        return "aux-ram-share" in self.machine_options or not self.machine_options

    def lacks(self, mode: str) -> str | None:
        """Why ``mode`` cannot run on this QEMU, in its own words; None when it can (or cannot be told)."""
        error = self.mode_errors.get(mode)
        if mode not in CPR_MODES or error is None:
            return None
        if self.mig_modes is not None and mode in self.mig_modes:
            return None  # the mode exists; QEMU refused it on `-machine none` for another reason
        values = f" (its MigMode values: {', '.join(self.mig_modes)})" if self.mig_modes else ""
        if self.mig_modes is None:
            values = " (its QMP schema has no MigMode enum: CPR modes arrived in QEMU 8.2)"
        return f"{self.version or self.binary}: {error}{values}"

    def to_json(self) -> dict[str, Any]:
        return {
            "binary": self.binary,
            "version": self.version,
            "mig_modes": self.mig_modes,
            "mode_errors": dict(self.mode_errors),
            "aux_ram_share": self.aux_ram_share,
            "notes": list(self.notes),
        }


def machine_options(binary: str, machine: str = "q35", timeout: float = PROBE_TIMEOUT_S) -> set[str]:
    """Option names ``-machine <machine>,help`` lists (``name=<type>`` lines; every QEMU 6.x+ prints them)."""
    proc = subprocess.run(
        [binary, "-machine", f"{machine},help"], capture_output=True, text=True, timeout=timeout
    )
    options = set()
    for line in proc.stdout.splitlines():
        name = line.strip().split("=", 1)[0]
        name = name.rsplit(".", 1)[-1]  # old form: "pc-q35-6.2-machine.acpi=OnOffAuto"
        if "=" in line and name and " " not in name:
            options.add(name)
    return options


def _qmp_session(
    binary: str, commands: list[dict[str, Any]], timeout: float, extra: list[str] | None = None
) -> list[dict[str, Any]]:
    """Send ``commands`` (after qmp_capabilities, then quit) to ``binary -machine none -qmp stdio``
    (plus ``extra`` arguments).

    Returns one reply per command (``{"return": ...}`` or ``{"error": ...}``), events dropped."""
    argv = [
        binary,
        "-machine",
        "none",
        "-nodefaults",
        "-display",
        "none",
        "-S",
        *(extra or []),
        "-qmp",
        "stdio",
    ]
    script = [{"execute": "qmp_capabilities"}, *commands, {"execute": "quit"}]
    text = "".join(json.dumps(c) + "\n" for c in script)
    try:
        proc = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeError(f"{binary}: {exc}") from None
    replies = []
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and ("return" in msg or "error" in msg):
            replies.append(msg)
    if len(replies) < len(script) - 1:  # quit may close the stream before its reply
        err = proc.stderr.strip().splitlines()[-3:]
        raise ProbeError(
            f"{binary} answered {len(replies)} of {len(script)} QMP commands "
            f"(exit {proc.returncode}): {' | '.join(err) or 'no stderr'}"
        )
    return replies[1 : 1 + len(commands)]


def start_error(binary: str, args: list[str], timeout: float = PROBE_TIMEOUT_S) -> str:
    """QEMU's own words when ``binary`` will not start with ``args`` (e.g. ``-sandbox`` in a build without
    seccomp); "" when it starts and answers QMP."""
    try:
        _qmp_session(binary, [], timeout, args)
    except ProbeError as exc:
        return str(exc)
    return ""


def _mig_modes(schema: Any) -> list[str] | None:
    for entry in schema if isinstance(schema, list) else []:
        values = entry.get("values") if isinstance(entry, dict) else None
        if entry.get("meta-type") == "enum" and isinstance(values, list) and "cpr-reboot" in values:
            return [str(v) for v in values]
    return None


def probe(binary: str, timeout: float = PROBE_TIMEOUT_S) -> Capabilities:
    """Ask ``binary`` what it supports, each question within ``timeout`` seconds. A probe that fails is
    noted, never raised: the scenario then runs as for a current QEMU and QEMU's own errors (or the
    recipe's step timeouts) decide its verdict."""
    caps = Capabilities(binary)
    try:
        caps.machine_options = machine_options(binary, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        caps.notes.append(f"-machine q35,help: {exc}")
    commands: list[dict[str, Any]] = [{"execute": "query-version"}, {"execute": "query-qmp-schema"}]
    commands += [{"execute": "migrate-set-parameters", "arguments": {"mode": m}} for m in CPR_MODES]
    try:
        version, schema, *modes = _qmp_session(binary, commands, timeout)
    except ProbeError as exc:
        caps.notes.append(str(exc))
        return caps
    q = (version.get("return") or {}).get("qemu") or {}
    package = str((version.get("return") or {}).get("package") or "").strip()
    caps.version = f"{q.get('major')}.{q.get('minor')}.{q.get('micro')}" + (f" {package}" if package else "")
    caps.mig_modes = _mig_modes(schema.get("return"))
    for mode, reply in zip(CPR_MODES, modes, strict=False):
        if "error" in reply:
            caps.mode_errors[mode] = str(reply["error"].get("desc") or reply["error"])
    return caps
