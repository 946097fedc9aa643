"""What a harness container may do to the host: who it runs as, which privileges and how much of the
machine it gets. :meth:`harness.engine.containers.Engine.session` applies it to every container.

* **Users.** Builds run as :data:`BUILD_USER`, scenarios as :data:`SCENARIO_USER`: dedicated uids at the
  top of Debian's range for ordinary accounts (which ``adduser`` fills from the bottom), never uid 1000,
  which on most machines is a real person; ``apt-get source`` runs as :data:`FETCH_USER`. When the
  harness itself does not run as root it cannot hand folders to another uid, so its containers run as
  its own uid instead. A container runs as root only for a KVM cell on a host whose ``/dev/kvm`` only
  root may open (see below).
* **Privileges.** Every capability is dropped (``--cap-drop ALL``); none is added back, because nothing
  the harness runs needs one: a build writes only its own folders, QEMU needs only ``/dev/kvm`` (a file
  permission, not a capability), and a scenario's driver kills and reads ``/proc`` of its own children.
  ``no-new-privileges`` stops a set-uid file from raising them again.
* **Limits.** A pids limit and a memory limit per container (:class:`Limits`; the matrix's ``settings``
  choose them), so a fork bomb or a runaway build stays inside its container.
* **KVM.** ``/dev/kvm`` is passed with its host owner and mode. When the host lets a group use it
  (``crw-rw---- root kvm``, as udev sets it up), the scenario user gets that group and stays non-root.
  When only root may open it (mode ``0600``), a non-root QEMU cannot (``Permission denied``), so that
  KVM cell runs as root *inside* the container, still without any capability: see :func:`kvm_user`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

KVM_DEVICE = Path("/dev/kvm")


@dataclass(frozen=True)
class User:
    """A numeric ``uid:gid`` (plus supplementary groups) a container runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"

    @property
    def root(self) -> bool:
        return self.uid == 0


BUILD_USER = User(59990, 59990)
SCENARIO_USER = User(59991, 59991)
FETCH_USER = User(59992, 59992)  # apt-get source (network on, nothing of the tree runs)
ROOT = User(0, 0)


def _dedicated(user: User) -> User:
    """``user`` when the harness runs as root; else the harness's own uid, which already owns the folders
    a container must write (an unprivileged host cannot give them to another uid)."""
    return user if os.geteuid() == 0 else User(os.getuid(), os.getgid())


def build_user() -> User:
    return _dedicated(BUILD_USER)


def scenario_user() -> User:
    return _dedicated(SCENARIO_USER)


def fetch_user() -> User:
    return _dedicated(FETCH_USER)


def give_folder(folder: Path, user: User) -> None:
    """Make ``folder`` (made by the host, not followed when it is a symlink) owned by ``user``; only the
    folder itself, never what is inside it."""
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{folder} is not a folder (a symlink?); refusing to hand it to uid {user.uid}")
    if (st.st_uid, st.st_gid) != (user.uid, user.gid):
        os.lchown(folder, user.uid, user.gid)


@dataclass(frozen=True)
class Limits:
    """Per-container resource limits (``--pids-limit``, ``--memory``; swap is not allowed on top)."""

    memory_mb: int = 8192
    pids: int = 4096


@dataclass(frozen=True)
class Hardening:
    """The Docker options :meth:`Engine.session` always sets (kept in one place so tests can read them)."""

    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ("no-new-privileges",)


HARDENING = Hardening()


def kvm_user(device: Path = KVM_DEVICE) -> User:
    """The user a KVM scenario runs as: the scenario user plus the device's group when that group may read
    and write it; root inside the container (without capabilities) when only root may open it."""
    user = scenario_user()
    try:
        st = os.stat(device)
    except OSError:
        return user  # no device: the cell falls back to TCG anyway
    rw_group, rw_other = stat.S_IRGRP | stat.S_IWGRP, stat.S_IROTH | stat.S_IWOTH
    if st.st_mode & rw_other == rw_other:
        return user
    if st.st_mode & rw_group == rw_group:
        return User(user.uid, user.gid, (st.st_gid,))
    return ROOT if os.geteuid() == 0 else user  # unprivileged host: the container's probe says why not
