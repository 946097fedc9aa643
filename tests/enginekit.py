"""A private Docker engine for the fault that stops an engine: its own ``dockerd`` with its own data root,
exec root, pidfile, socket and (empty) config file, reached through ``DOCKER_HOST``. The machine's engine
is never stopped, restarted or reconfigured: only images are copied from it (``docker save | load``).

Networking: the private dockerd gets a bridge of its own, made here (``cprd<n>``, a /30 of the
documentation range 192.0.2.0/24, removed afterwards), and touches no iptables rule nor sysctl. Never
``--bridge=none``: a dockerd started that way deletes the host's ``docker0``, which the machine's engine
is using (seen on this machine; the containers of the machine's engine then cannot start on the default
network until ``docker0`` is made again)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest


@dataclass
class PrivateEngine:
    root: Path
    bridge: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    def start(self) -> None:
        """Start this engine's dockerd (on the same data root each time) and wait until it answers."""
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", str(self.root / "daemon.json"),
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.pidfile), "-H", self.host, "--bridge", self.bridge,
             "--iptables=false", "--ip-masq=false", "--ip-forward=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(docker.errors.DockerException):
                docker.DockerClient(base_url=self.host, timeout=5).ping()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(
            f"private dockerd did not start: {(self.root / 'dockerd.log').read_text()[-2000:]}"
        )

    def stop(self) -> None:
        """SIGTERM to this engine's dockerd (its own pid, never a name), then wait for it to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def load(self, *tags: str) -> None:
        """Copy images from the machine's engine into this one."""
        save = subprocess.Popen(["docker", "save", *tags], stdout=subprocess.PIPE,
                                env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})  # fmt: skip
        load = subprocess.run(
            ["docker", "-H", self.host, "load", "-q"], stdin=save.stdout, capture_output=True
        )
        assert save.wait() == 0 and load.returncode == 0, load.stderr


def _unmount_below(root: Path) -> None:
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root (CI runs as root)")
    if shutil.which("dockerd") is None:
        pytest.fail("no dockerd: install docker.io (.ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="cprd-", dir="/tmp"))  # short: unix socket paths are limited
    (root / "daemon.json").write_text("{}\n")  # not the machine's /etc/docker/daemon.json
    n = os.getpid() % 60
    bridge = f"cprd{os.getpid()}"[:15]
    ip = ["ip", "link", "add", "name", bridge, "type", "bridge"]
    subprocess.run(ip, check=True)
    engine = PrivateEngine(root, bridge)
    try:
        subprocess.run(["ip", "addr", "add", f"192.0.2.{4 * n + 1}/30", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        engine.start()
        yield engine
    finally:
        engine.stop()
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], check=False)
