"""Make this machine able to run the harness: a Docker engine, debootstrap and GNU patch.

Root on Debian/Ubuntu only. Idempotent: installs only what is missing, starts ``dockerd`` only when no
engine answers, then waits for the socket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import InfraError

PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "patch": "patch", "git": "git"}
SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/var/log/cpr-harness-dockerd.log")


def engine_answers() -> bool:
    if not SOCKET.exists() or shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def provision(progress: Callable[[str], None] = print, wait_s: float = 90) -> None:
    if os.geteuid() != 0:
        raise InfraError("provision must run as root", hint="sudo nox -s provision")
    if shutil.which("apt-get") is None:
        raise InfraError(
            "provision supports Debian/Ubuntu (apt-get) only",
            hint="install a Docker engine, debootstrap and patch by hand",
        )
    missing = sorted({pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None})
    if missing:
        progress(f"provision: apt-get install {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise InfraError(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    else:
        progress("provision: docker.io, debootstrap, patch and git are installed")
    if engine_answers():
        progress("provision: the Docker engine answers")
        return
    _wait_for_exit("dockerd", wait_s, progress)  # one that is still shutting down holds its pid file
    progress(f"provision: starting dockerd (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if engine_answers():
            progress("provision: the Docker engine answers")
            return
        time.sleep(1)
    tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-15:]
    raise InfraError(f"dockerd did not answer within {wait_s:.0f}s:\n" + "\n".join(tail))


def _wait_for_exit(name: str, wait_s: float, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + wait_s
    while subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise InfraError(
                f"a {name} is running but does not answer", hint=f"stop it (pkill -x {name}), then retry"
            )
        progress(f"provision: waiting for the previous {name} to exit")
        time.sleep(1)
