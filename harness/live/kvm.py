"""Whether KVM can be used here: the one probe, for the host (before lending ``/dev/kvm`` to a
container) and inside the container (before choosing ``-accel kvm``)."""

from __future__ import annotations

import fcntl
import os
from typing import Protocol

from harness.live.errors import EnvironmentLimit, ScenarioFailed

KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12


def kvm_problem(device: str = "/dev/kvm") -> str:
    """Why KVM cannot be used through ``device`` ("" when it can): open it read-write and ask its API
    version, which must be 12. Note: a usable /dev/kvm does not promise every guest runs under KVM
    (nested KVM may fail to emulate some instructions); that shows up at run time."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{device}: {exc.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return f"{device}: KVM_GET_API_VERSION failed: {exc.strerror}"
    finally:
        os.close(fd)
    return "" if version == KVM_API_VERSION else f"{device}: KVM API version {version}, expected 12"


class _Stopped(Protocol):
    side: str

    def stderr_tail(self, lines: int = 8) -> str: ...


# Runstates in which a booting guest will not go on by itself.
STOPPED = ("internal-error", "guest-panicked", "shutdown", "io-error")
KVM_EMULATION_FAILURE = "KVM internal error"


def stopped_guest(state: str, accel: str, vm: _Stopped) -> ScenarioFailed | EnvironmentLimit | None:
    """Why a guest that should be booting is not (None while it runs). Under KVM, ``internal-error`` with
    "KVM internal error" on QEMU's stderr is this host's KVM failing to emulate the guest (a nested
    KVM stops a distro kernel in its decompressor: "Suberror: 1 ... emulation failure"): a limit of the
    environment, not a QEMU failure."""
    if state not in STOPPED:
        return None
    tail = vm.stderr_tail(40)
    said = [ln.strip() for ln in tail.splitlines() if "KVM" in ln or "emulation failure" in ln]
    if accel == "kvm" and state == "internal-error" and any(KVM_EMULATION_FAILURE in ln for ln in said):
        return EnvironmentLimit(
            f"this host's KVM cannot run the guest (runstate internal-error during boot; a nested KVM "
            f"cannot emulate it): {' | '.join(said[:3])}"
        )
    last = " | ".join(tail.splitlines()[-3:])
    return ScenarioFailed(
        f"{vm.side}: the guest stopped during boot (runstate {state})" + (f": {last}" if last else "")
    )
