"""Containers through the Docker Engine API: start one, run commands in it, always remove it.

This package knows Docker, not QEMU. Every container :meth:`Engine.session` starts runs an init as PID 1,
as a given non-root user, with the hardening of :mod:`harness.engine.sandbox` (no capabilities,
``no-new-privileges``, pids and memory limits), and is removed when the ``with`` block ends: on success,
error and Ctrl-C. It carries the label ``cpr-harness=1`` and its owner (:mod:`harness.engine.owner`), so
that a later run can remove what a killed one left behind. Images come from :mod:`harness.engine.images`.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests
from docker.models.containers import Container

from harness.config.repo import CONTAINERS_DIR, cache_dir
from harness.engine import client as engine_client
from harness.engine import owner
from harness.engine.client import LABEL, engine_error
from harness.engine.images import ImageRef, Images
from harness.engine.sandbox import HARDENING, Limits, User

__all__ = ["ContainerSession", "Engine", "ImageRef", "Limits", "Mount", "RunResult", "Stopped", "User"]


class Stopped(Exception):
    """:meth:`Engine.stop` was called (Ctrl-C while cells run in parallel): the work in this container
    was abandoned and its container removed. Not a result: nothing of it is to be stored."""


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

    def __init__(
        self, client: docker.DockerClient, container: Container, stopped: threading.Event | None = None
    ) -> None:
        self._client = client
        self._container = container
        self._stopped = stopped or threading.Event()
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
            if self._stopped.is_set():
                raise Stopped(self.id) from exc
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
            if self._stopped.is_set():
                raise Stopped(self.id) from exc
            if timed_out.is_set():
                return RunResult(124, "".join(chunks), timed_out=True)
            raise engine_error(exc, f"running {argv[0]!r} in container {self.id[:12]}") from exc
        finally:
            if timer is not None:
                timer.cancel()
        if self._stopped.is_set():
            raise Stopped(self.id)
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
        lock_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.containers_dir = containers_dir
        self.progress = progress
        self.images = Images(client, containers_dir, progress, lock_dir or cache_dir() / "locks")
        self._live: dict[str, ContainerSession] = {}
        self._live_lock = threading.Lock()
        self._stopped = threading.Event()

    @classmethod
    def connect(cls, progress: Callable[[str], None] = print, lock_dir: Path | None = None) -> Engine:
        """Connect to the engine; image locks live in ``lock_dir`` (default: ``<cache>/locks``)."""
        return cls(engine_client.connect(), progress=progress, lock_dir=lock_dir)

    def ensure_image(self, name: str) -> ImageRef:
        """The image of ``containers/<name>``, built (with its bases) only when its recipe changed."""
        return self.images.ensure_image(name)

    # -- containers -----------------------------------------------------------------------------

    def stop(self) -> int:
        """Remove every container this engine object is running, now, and start no more; the threads
        that ran them get :class:`Stopped`. Returns how many were removed (Ctrl-C with ``--jobs``)."""
        self._stopped.set()
        with self._live_lock:
            live = list(self._live.values())
        for session in live:
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                session.remove()
        return len(live)

    @contextlib.contextmanager
    def session(
        self,
        image: ImageRef,
        *,
        mounts: list[Mount] | tuple[Mount, ...] = (),
        user: User,
        network: bool = False,
        env: dict[str, str] | None = None,
        devices: list[str] | tuple[str, ...] = (),
        shm_size: str | None = None,
        limits: Limits | None = None,
        label: str = "",
    ) -> Iterator[ContainerSession]:
        """Start a container of ``image`` running as ``user`` and yield it; it is removed on every way out
        of the ``with`` block. Every container gets the hardening of :mod:`harness.engine.sandbox`."""
        volumes = {str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in mounts}
        limits = limits or Limits()
        if self._stopped.is_set():
            raise Stopped(label)
        try:
            container = self.client.containers.create(
                image.tag,
                command=["sleep", "infinity"],
                init=True,
                detach=True,
                network_mode=None if network else "none",
                volumes=volumes,
                user=user.spec,
                group_add=[str(g) for g in user.groups],
                environment=env or {},
                devices=list(devices),
                shm_size=shm_size,
                cap_drop=list(HARDENING.cap_drop),
                cap_add=list(HARDENING.cap_add),
                security_opt=list(HARDENING.security_opt),
                pids_limit=limits.pids,
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                labels={LABEL: "1", f"{LABEL}.what": label, **owner.labels()},
            )
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise engine_error(exc, f"creating a container of {image.tag}") from exc
        session = ContainerSession(self.client, container, self._stopped)
        try:
            with self._live_lock:
                self._live[session.id] = session
            if self._stopped.is_set():
                raise Stopped(label)
            try:
                container.start()
            except (docker.errors.APIError, requests.RequestException) as exc:
                if self._stopped.is_set():
                    raise Stopped(label) from exc
                raise engine_error(exc, f"starting a container of {image.tag}") from exc
            yield session
        finally:
            with self._live_lock:
                self._live.pop(session.id, None)
            with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
                session.remove()

    def remove_orphans(self) -> int:
        """Remove harness containers whose owning harness process is gone (after a hard kill).

        Only containers started by :meth:`session` carry the owner label; a container someone started
        by hand from a harness image inherits the image's ``cpr-harness`` label but is never touched, and
        neither is one whose owner lives in another pid namespace or on another machine sharing this
        engine (see :mod:`harness.engine.owner`)."""
        removed = 0
        try:
            for container in self.client.containers.list(all=True, filters={"label": owner.OWNER_LABEL}):
                if not owner.is_orphan(container.labels.get(owner.OWNER_LABEL, "")):
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
        mine = f"{owner.OWNER_LABEL}={owner.this_owner()}"
        return [str(c.id) for c in self.client.containers.list(all=True, filters={"label": mine})]
