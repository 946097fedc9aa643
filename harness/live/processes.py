"""Processes as the in-container driver sees them: exit statuses, leftovers, listening sockets."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def describe_exit(code: int | None) -> str:
    """``-6, SIGABRT`` for a death by signal, the number otherwise (``None`` while running)."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"{code}, {signal.Signals(-code).name}"
    return str(code)


def unix_socket_listening(path: Path) -> bool:
    """Whether a unix socket bound at ``path`` is listening (/proc/net/unix flag __SO_ACCEPTCON).

    The socket file appears at bind(), before listen(): connecting in between is refused. Probing by
    connecting is not an option for QEMU's cpr channel (the probe would be taken as the channel).
    """
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return path.exists()
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(path) and int(fields[3], 16) & 0x10000:
            return True
    return False


def leftover_processes(exclude: set[int] | None = None) -> list[str]:
    """``"pid comm state"`` of every QEMU and every zombie in this PID namespace, from /proc."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me or (exclude and int(entry) in exclude):
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if comm.startswith("qemu") or state == "Z":
            found.append(f"{entry} {comm}{' <defunct>' if state == 'Z' else ''} {state}")
    return found
