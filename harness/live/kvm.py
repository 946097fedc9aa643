"""Whether KVM can be used here: the one probe, for the host (before lending ``/dev/kvm`` to a
container) and inside the container (before choosing ``-accel kvm``)."""

from __future__ import annotations

import fcntl
import os

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
