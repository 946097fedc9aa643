"""The connection to the Docker engine, and how its failures are reported (always ``InfraError``)."""

from __future__ import annotations

import os

import docker
import docker.errors
import requests

from harness.errors import InfraError

LABEL = "cpr-harness"  # every image and container the harness makes carries it
PROVISION_HINT = "start the engine: `nox -s provision` (as root on Debian/Ubuntu) or `sudo dockerd &`"
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


def engine_error(exc: Exception, doing: str) -> InfraError:
    return InfraError(f"Docker engine error while {doing}: {exc}", hint=PROVISION_HINT)


def connect() -> docker.DockerClient:
    """A client of the engine at ``DOCKER_HOST`` (default: the local socket), after a ping."""
    try:
        client = docker.from_env(timeout=15)
        client.ping()  # a daemon that hangs is "not answering" too
        client.api.timeout = 1800  # from now on, the read timeout of streams: ninja may be silent long
        return client
    except ENGINE_ERRORS as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise InfraError(
            f"no Docker engine answers at {host} ({exc.__class__.__name__})", hint=PROVISION_HINT
        ) from exc
