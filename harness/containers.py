"""Build images and run commands in containers through the Docker Engine API.

This module knows Docker, not QEMU. Images live in ``containers/<name>/Dockerfile``; the first line of
each names its base::

    # cpr-harness-base: debian:trixie          (a root filesystem: pulled, or bootstrapped)
    # cpr-harness-base: image:debian-trixie    (another image of this repository)
    # cpr-harness-base: registry:openeuler/openeuler:24.03-lts   (pulled only: there is no bootstrap)

An image is tagged ``cpr-harness/<name>:<recipe-hash>``, where the recipe hash covers every file of the
folder and the base image id, so it is rebuilt exactly when its recipe (or its base) changes. When no
registry answers for a ``debian:<suite>`` base, the root filesystem is bootstrapped once with
``debootstrap`` (mirror taken from the host's apt configuration) and imported.

Every container this module starts carries the label ``cpr-harness=1`` plus the owning process id, runs
an init as PID 1 and is removed when its :class:`ContainerSession` closes: on success, error and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

from harness.bootstrap import bootstrap_root
from harness.errors import InfraError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_DIR = REPO_ROOT / "containers"
LABEL = "cpr-harness"
BASE_LINE = re.compile(r"^#\s*cpr-harness-base:\s*(\S+)\s*$")
PROVISION_HINT = "start the engine: `nox -s provision` (as root on Debian/Ubuntu) or `sudo dockerd &`"


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str
    id: str


@dataclass
class RunResult:
    exit_code: int
    output: str
    timed_out: bool = False


def _engine_error(exc: Exception, doing: str) -> InfraError:
    return InfraError(f"Docker engine error while {doing}: {exc}", hint=PROVISION_HINT)


class ContainerSession:
    """One running container (init as PID 1, idle command); commands run in it with :meth:`exec`."""

    def __init__(self, client: docker.DockerClient, container) -> None:
        self._client = client
        self._container = container
        self.id: str = container.id

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
            raise _engine_error(exc, f"starting {argv[0]!r} in container {self.id[:12]}") from exc
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
            raise _engine_error(exc, f"running {argv[0]!r} in container {self.id[:12]}") from exc
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

    @classmethod
    def connect(cls, progress: Callable[[str], None] = print) -> Engine:
        try:
            docker.from_env(timeout=15).ping()  # a daemon that hangs is "not answering" too
            client = docker.from_env(timeout=1800)  # the read timeout of streams: ninja may be silent long
        except (docker.errors.DockerException, requests.RequestException) as exc:
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise InfraError(
                f"no Docker engine answers at {host} ({exc.__class__.__name__})", hint=PROVISION_HINT
            ) from exc
        return cls(client, progress=progress)

    # -- images -------------------------------------------------------------------------------

    def recipe_dir(self, name: str) -> Path:
        folder = self.containers_dir / name
        if not (folder / "Dockerfile").is_file():
            known = sorted(p.name for p in self.containers_dir.iterdir() if (p / "Dockerfile").is_file())
            raise InfraError(
                f"image {name!r} has no recipe {folder}/Dockerfile", hint=f"use one of: {', '.join(known)}"
            )
        return folder

    def base_of(self, name: str) -> str:
        first = (self.recipe_dir(name) / "Dockerfile").read_text().splitlines()[0]
        match = BASE_LINE.match(first)
        if not match:
            raise InfraError(
                f"containers/{name}/Dockerfile: first line must be "
                "'# cpr-harness-base: debian:<suite>', '# cpr-harness-base: image:<name>' or "
                "'# cpr-harness-base: registry:<repository>:<tag>'"
            )
        return match.group(1)

    def context_files(self, name: str) -> list[tuple[str, Path]]:
        """The build context of an image: its folder, plus ``containers/common/`` as ``common/``."""
        folder, common = self.recipe_dir(name), self.containers_dir / "common"
        files = [(str(p.relative_to(folder)), p) for p in sorted(folder.rglob("*")) if p.is_file()]
        if common.is_dir():
            files += [
                (f"common/{p.relative_to(common)}", p) for p in sorted(common.rglob("*")) if p.is_file()
            ]
        return files

    def recipe_hash(self, name: str, base_id: str) -> str:
        digest = hashlib.sha256(base_id.encode())
        for arcname, path in self.context_files(name):
            digest.update(arcname.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def _context(self, name: str) -> io.BytesIO:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for arcname, path in self.context_files(name):
                tar.add(path, arcname=arcname)
        buffer.seek(0)
        return buffer

    def _existing(self, tag: str) -> ImageRef | None:
        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise _engine_error(exc, f"looking up image {tag}") from exc
        return ImageRef(name=tag, tag=tag, id=image.id)

    def ensure_image(self, name: str) -> ImageRef:
        """Return the image for ``containers/<name>``, building it (and its base) only when needed."""
        base = self.base_of(name)
        if base.startswith("image:"):
            parent = self.ensure_image(base.removeprefix("image:"))
            base_tag, base_id = parent.tag, parent.id
        elif base.startswith("debian:"):
            root = self.ensure_root(base.removeprefix("debian:"))
            base_tag, base_id = root.tag, root.id
        elif base.startswith("registry:"):
            pulled = self.ensure_pulled(name, base.removeprefix("registry:"))
            base_tag, base_id = pulled.tag, pulled.id
        else:
            raise InfraError(f"containers/{name}/Dockerfile: unknown base {base!r}")
        recipe = self.recipe_hash(name, base_id)
        tag = f"{LABEL}/{name}:{recipe[:16]}"
        with file_lock(Path(tempfile.gettempdir()) / f"cpr-harness-image-{name}.lock"):
            found = self._existing(tag)
            if found:
                return ImageRef(name=name, tag=tag, id=found.id)
            self.progress(f"image {name}: building from containers/{name} (recipe {recipe[:12]})")
            started = time.monotonic()
            try:
                lines = self.client.api.build(
                    fileobj=self._context(name),
                    custom_context=True,
                    tag=tag,
                    buildargs={"BASE": base_tag},
                    labels={LABEL: "1", f"{LABEL}.recipe": recipe},
                    rm=True,
                    forcerm=True,
                    decode=True,
                )
                tail: list[str] = []
                for item in lines:
                    if "error" in item:
                        log = "".join(tail[-30:])
                        raise InfraError(
                            f"image {name}: build failed: {item['error'].strip()}\n{log}",
                            hint=f"fix containers/{name}/Dockerfile",
                        )
                    text = item.get("stream", "")
                    if text:
                        tail.append(text)
                        if text.startswith("Step "):
                            self.progress(f"image {name}: {text.strip()}")
            except (docker.errors.APIError, requests.RequestException) as exc:
                raise _engine_error(exc, f"building image {name}") from exc
            image_id = self.client.images.get(tag).id
            self.progress(f"image {name}: built {image_id[:19]} in {time.monotonic() - started:.0f}s")
            return ImageRef(name=name, tag=tag, id=image_id)

    def ensure_root(self, suite: str) -> ImageRef:
        """A plain Debian root filesystem image: ``debian:<suite>`` pulled, else bootstrapped."""
        tag = f"{LABEL}/base:{suite}"
        with file_lock(Path(tempfile.gettempdir()) / f"cpr-harness-root-{suite}.lock"):
            found = self._existing(tag)
            if found:
                return found
            try:
                self.progress(f"base {suite}: trying to pull debian:{suite}")
                image = self.client.images.pull("debian", tag=suite)
                image.tag(f"{LABEL}/base", tag=suite)
                return ImageRef(name=tag, tag=tag, id=image.id)
            except (docker.errors.APIError, requests.RequestException) as exc:
                self.progress(f"base {suite}: no registry answers ({str(exc)[:80]}); bootstrapping")
            return self._bootstrap(suite, tag)

    def ensure_pulled(self, name: str, reference: str) -> ImageRef:
        """A registry base (``repository:tag``): present locally, else pulled. There is no bootstrap for
        such bases: when the pull fails, one InfraError says so (``docker load`` the image to go on)."""
        repository, _, tag = (
            reference.rpartition(":") if ":" in reference.split("/")[-1] else (reference, "", "")
        )
        tag = tag or "latest"
        found = self._existing(f"{repository}:{tag}")
        if found:
            return found
        with file_lock(Path(tempfile.gettempdir()) / f"cpr-harness-pull-{repository.replace('/', '_')}.lock"):
            try:
                self.progress(f"image {name}: trying to pull {repository}:{tag}")
                image = self.client.images.pull(repository, tag=tag)
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise InfraError(
                    f"image {name}: cannot pull {repository}:{tag} (no registry answers: {str(exc)[:120]}) "
                    f"and the harness has no bootstrap for this distribution",
                    hint=f"make a registry reachable, or `docker load` an image tagged {repository}:{tag}",
                ) from exc
            return ImageRef(name=f"{repository}:{tag}", tag=f"{repository}:{tag}", id=image.id)

    def _bootstrap(self, suite: str, tag: str) -> ImageRef:
        repo, _, version = tag.partition(":")
        started = time.monotonic()
        try:
            bootstrap_root(suite, lambda stream: self.client.api.import_image_from_stream(
                stream, repository=repo, tag=version), self.progress)  # fmt: skip
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise _engine_error(exc, f"importing the {suite} root filesystem") from exc
        found = self._existing(tag)
        if not found:
            raise InfraError(f"base {suite}: import finished but {tag} is missing")
        self.progress(f"base {suite}: bootstrapped and imported in {time.monotonic() - started:.0f}s")
        return found

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
            raise _engine_error(exc, f"creating a container of {image.tag}") from exc
        session = ContainerSession(self.client, container)
        try:
            try:
                container.start()
            except (docker.errors.APIError, requests.RequestException) as exc:
                raise _engine_error(exc, f"starting a container of {image.tag}") from exc
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
            raise _engine_error(exc, "listing harness containers") from exc
        return removed

    def list_own(self) -> list[str]:
        """Ids of live containers labelled by this process (for leak checks)."""
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner-pid={os.getpid()}"})
        return [c.id for c in found]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the ``with`` block (two runs sharing one cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
