"""Images for builds and scenarios: built from ``containers/<name>/`` through the Docker Engine API.

An image is tagged ``cpr-harness/<name>:<recipe-hash>``, where the recipe hash covers every file of the
folder (plus ``containers/common/``) and the base image id, so it is rebuilt exactly when its recipe
(or its base) changes. When no registry answers for a ``debian:<suite>`` base, the root filesystem is
bootstrapped once with ``debootstrap`` (mirror taken from the host's apt configuration) and imported.
The base line is parsed by :mod:`harness.config.images`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

from harness.config import images as recipes
from harness.engine.bootstrap import bootstrap_root
from harness.engine.client import LABEL, engine_error
from harness.engine.locks import file_lock
from harness.errors import InfraError


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str
    id: str


class Images:
    """The repository's image recipes, realised on one Docker engine."""

    def __init__(
        self,
        client: docker.DockerClient,
        containers_dir: Path,
        progress: Callable[[str], None],
        lock_dir: Path,
    ) -> None:
        self.client = client
        self.containers_dir = containers_dir
        self.progress = progress
        self.lock_dir = lock_dir  # in the cache, never under a predictable name in /tmp

    def _lock(self, what: str) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.lock_dir / f"{what.replace('/', '_')}.lock")

    def recipe_dir(self, name: str) -> Path:
        folder = self.containers_dir / name
        if not (folder / "Dockerfile").is_file():
            known = sorted(p.name for p in self.containers_dir.iterdir() if (p / "Dockerfile").is_file())
            raise InfraError(
                f"image {name!r} has no recipe {folder}/Dockerfile", hint=f"use one of: {', '.join(known)}"
            )
        return folder

    def base_of(self, name: str) -> recipes.Base:
        self.recipe_dir(name)
        base = recipes.base_of(self.containers_dir, name)
        if base is None:
            raise InfraError(f"containers/{name}/Dockerfile: first line must be {recipes.BASE_FORMS}")
        return base

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
            raise engine_error(exc, f"looking up image {tag}") from exc
        return ImageRef(name=tag, tag=tag, id=str(image.id))

    def ensure_image(self, name: str) -> ImageRef:
        """Return the image for ``containers/<name>``, building it (and its base) only when needed."""
        base = self.base_of(name)
        if base.kind == "image":
            parent = self.ensure_image(base.value)
            base_tag, base_id = parent.tag, parent.id
        elif base.kind == "debian":
            root = self.ensure_root(base.value)
            base_tag, base_id = root.tag, root.id
        else:
            pulled = self.ensure_pulled(name, base.value)
            base_tag, base_id = pulled.tag, pulled.id
        recipe = self.recipe_hash(name, base_id)
        tag = f"{LABEL}/{name}:{recipe[:16]}"
        with self._lock(f"image-{name}"):
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
                raise engine_error(exc, f"building image {name}") from exc
            image_id = str(self.client.images.get(tag).id)
            self.progress(f"image {name}: built {image_id[:19]} in {time.monotonic() - started:.0f}s")
            return ImageRef(name=name, tag=tag, id=image_id)

    def ensure_root(self, suite: str) -> ImageRef:
        """A plain Debian root filesystem image: ``debian:<suite>`` pulled, else bootstrapped."""
        tag = f"{LABEL}/base:{suite}"
        with self._lock(f"root-{suite}"):
            found = self._existing(tag)
            if found:
                return found
            try:
                self.progress(f"base {suite}: trying to pull debian:{suite}")
                image = self.client.images.pull("debian", tag=suite)
                image.tag(f"{LABEL}/base", tag=suite)
                return ImageRef(name=tag, tag=tag, id=str(image.id))
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
        with self._lock(f"pull-{repository}"):
            try:
                self.progress(f"image {name}: trying to pull {repository}:{tag}")
                image = self.client.images.pull(repository, tag=tag)
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise InfraError(
                    f"image {name}: cannot pull {repository}:{tag} (no registry answers: {str(exc)[:120]}) "
                    f"and the harness has no bootstrap for this distribution",
                    hint=f"make a registry reachable, or `docker load` an image tagged {repository}:{tag}",
                ) from exc
            return ImageRef(name=f"{repository}:{tag}", tag=f"{repository}:{tag}", id=str(image.id))

    def _bootstrap(self, suite: str, tag: str) -> ImageRef:
        repo, _, version = tag.partition(":")
        started = time.monotonic()
        try:
            bootstrap_root(suite, lambda stream: self.client.api.import_image_from_stream(
                stream, repository=repo, tag=version), self.progress)  # fmt: skip
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise engine_error(exc, f"importing the {suite} root filesystem") from exc
        found = self._existing(tag)
        if not found:
            raise InfraError(f"base {suite}: import finished but {tag} is missing")
        self.progress(f"base {suite}: bootstrapped and imported in {time.monotonic() - started:.0f}s")
        return found
