"""Who owns a harness container, precisely enough that a later run can tell whether the owner is gone.

A bare pid is not enough: one Docker engine may serve several machines' or containers' pid namespaces
(CI runners sharing a daemon), where the same pid names different processes, and a pid is reused after
its process exits. So every container carries
``cpr-harness.owner = <host token>:<boot id>:<pid>:<start time>``:

* the **host token** is a digest of the machine id (or host name) and the inode of this process's pid
  namespace: two processes share it only when their pids mean the same thing;
* the **boot id** (``/proc/sys/kernel/random/boot_id``): a container from an earlier boot of this host
  has certainly lost its owner;
* the **start time** (clock ticks since boot, ``/proc/<pid>/stat``) tells a live owner from a new process
  that got the same pid.

:func:`is_orphan` is true only for a container whose token is this host's and whose owner process no
longer runs (another boot, no such pid, or another process now). Containers of other hosts or pid
namespaces, and older containers without the label, are never judged orphans: the harness removes only
what it can prove is its own and dead. The ``cpr-harness.owner-pid`` label stays for humans and leak
checks (``docker ps --filter``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path

from harness.engine.client import LABEL

OWNER_LABEL = f"{LABEL}.owner"
PID_LABEL = f"{LABEL}.owner-pid"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
MACHINE_ID = Path("/etc/machine-id")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@functools.cache
def host_token() -> str:
    """16 hex digits naming this machine's pid namespace (where a pid means one process)."""
    machine = _read(MACHINE_ID) or socket.gethostname()
    try:
        pidns = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        pidns = "no-pidns"
    return hashlib.sha256(f"{machine}\0{pidns}".encode()).hexdigest()[:16]


@functools.cache
def boot_id() -> str:
    return _read(BOOT_ID) or "no-boot-id"


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot, or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3, starttime 22
    return fields[19] if len(fields) > 19 else None


def owner_of(pid: int) -> str:
    return f"{host_token()}:{boot_id()}:{pid}:{start_time(pid) or '?'}"


def this_owner() -> str:
    return owner_of(os.getpid())


def labels() -> dict[str, str]:
    """The owner labels of a container started by this process."""
    return {OWNER_LABEL: this_owner(), PID_LABEL: str(os.getpid())}


def is_orphan(value: str) -> bool:
    """Whether a container labelled ``owner=value`` belongs to this host and its owner is gone."""
    token, boot, pid, started = ([*value.split(":"), "", "", ""])[:4]
    if token != host_token() or not pid.isdigit():
        return False  # another machine or another pid namespace: not ours to judge
    if boot != boot_id():
        return True  # made before this host last booted: its owner is gone
    now = start_time(int(pid))
    return now is None or now != started
