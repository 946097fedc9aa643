"""Containers through the Docker Engine API: start one, run commands in it, always remove it.

This package knows Docker, not QEMU. Every container :meth:`Engine.session` starts carries the label
``cpr-harness=1`` plus the owning process id, runs an init as PID 1 and is removed when the ``with``
block ends: on success, error and Ctrl-C. Images come from :mod:`harness.engine.images`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests
from docker.models.containers import Container

from harness.config.repo import CONTAINERS_DIR
from harness.engine import client as engine_client
from harness.engine.client import LABEL, engine_error
from harness.engine.images import ImageRef, Images

__all__ = ["ContainerSession", "Engine", "ImageRef", "Mount", "RunResult"]


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


@dataclass
class RunResult:
    exit_code: int
    output: str
    timed_out: bool = False


class ContainerSession:
    """One running container (init as PID 1, idle command); commands run in it with :meth:`exec`."""

    def __init__(self, client: docker.DockerClient, container: Container) -> None:
        self._client = client
        self._container = container
        self.id: str = str(container.id)

    def exec(
        self,
        argv: list[str],
        *,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Run ``argv`` (never through a shell) and return its exit code and combined output."""
        api = self._client.api
        try:
            exec_id = api.exec_create(
                self.id,
                cmd=list(argv),
                workdir=workdir,
                environment=env,
                user=user or "",
                stdout=True,
                stderr=True,
            )["Id"]
            stream = api.exec_start(exec_id, stream=True)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise engine_error(exc, f"starting {argv[0]!r} in container {self.id[:12]}") from exc
        timed_out = threading.Event()
        timer = None
        if timeout is not None:

            def expire() -> None:
                timed_out.set()
                with contextlib.suppress(Exception):
                    self._container.kill()

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        chunks: list[str] = []
        pending = ""
        try:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace")
                chunks.append(text)
                if on_line is None:
                    continue
                pending += text
                *lines, pending = re.split(r"\r\n|\n|\r", pending)
                for line in lines:
                    on_line(line)
            if on_line is not None and pending:
                on_line(pending)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except (docker.errors.APIError, requests.RequestException) as exc:
            if timed_out.is_set():
                return RunResult(124, "".join(chunks), timed_out=True)
            raise engine_error(exc, f"running {argv[0]!r} in container {self.id[:12]}") from exc
        finally:
            if timer is not None:
                timer.cancel()
        if timed_out.is_set():
            return RunResult(124, "".join(chunks), timed_out=True)
        return RunResult(code if code is not None else 125, "".join(chunks))

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._container.remove(force=True, v=True)


class Engine:
    """A connection to the Docker engine plus the image recipes of this repository."""

    def __init__(
        self,
        client: docker.DockerClient,
        containers_dir: Path = CONTAINERS_DIR,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.client = client
        self.containers_dir = containers_dir
        self.progress = progress
        self.images = Images(client, containers_dir, progress)

    @classmethod
    def connect(cls, progress: Callable[[str], None] = print) -> Engine:
        return cls(engine_client.connect(), progress=progress)

    def ensure_image(self, name: str) -> ImageRef:
        """The image of ``containers/<name>``, built (with its bases) only when its recipe changed."""
        return self.images.ensure_image(name)

    # -- containers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(
        self,
        image: ImageRef,
        *,
        mounts: list[Mount] | tuple[Mount, ...] = (),
        network: bool = False,
        user: str | None = None,
        env: dict[str, str] | None = None,
        devices: list[str] | tuple[str, ...] = (),
        shm_size: str | None = None,
        label: str = "",
    ) -> Iterator[ContainerSession]:
        """Start a container and yield it; it is removed on every way out of the ``with`` block."""
        volumes = {str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in mounts}
        try:
            container = self.client.containers.create(
                image.tag,
                command=["sleep", "infinity"],
                init=True,
                detach=True,
                network_mode=None if network else "none",
                volumes=volumes,
                user=user or "",
                environment=env or {},
                devices=list(devices),
                shm_size=shm_size,
                labels={LABEL: "1", f"{LABEL}.owner-pid": str(os.getpid()), f"{LABEL}.what": label},
            )
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise engine_error(exc, f"creating a container of {image.tag}") from exc
        session = ContainerSession(self.client, container)
        try:
            try:
                container.start()
            except (docker.errors.APIError, requests.RequestException) as exc:
                raise engine_error(exc, f"starting a container of {image.tag}") from exc
            yield session
        finally:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                session.remove()

    def remove_orphans(self) -> int:
        """Remove harness containers whose owning harness process is gone (after a hard kill).

        Only containers started by :meth:`session` carry the owner label; a container someone started
        by hand from a harness image inherits the image's ``cpr-harness`` label but is never touched."""
        removed = 0
        try:
            for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner-pid"}):
                owner = container.labels.get(f"{LABEL}.owner-pid", "")
                if owner.isdigit() and _pid_alive(int(owner)):
                    continue
                try:
                    container.remove(force=True, v=True)
                    removed += 1
                except docker.errors.APIError as exc:  # another run removes it at the same moment
                    if not isinstance(exc, docker.errors.NotFound) and exc.status_code != 409:
                        raise
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise engine_error(exc, "listing harness containers") from exc
        return removed

    def remove_own(self) -> int:
        """Remove every container of this process at once (Ctrl-C while several run in threads: their
        commands end, and each thread's own cleanup then finds its container gone)."""
        removed = 0
        for container_id in self.list_own():
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                self.client.api.remove_container(container_id, force=True, v=True)
                removed += 1
        return removed

    def list_own(self) -> list[str]:
        """Ids of live containers labelled by this process (for leak checks)."""
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner-pid={os.getpid()}"})
        return [str(c.id) for c in found]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
