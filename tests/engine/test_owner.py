"""Orphan removal by owner token + boot id + start time (harness.engine.owner), not by a bare pid."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import docker
import pytest

from harness.engine import owner
from harness.engine.client import LABEL
from harness.engine.containers import Engine


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_owner_is_not_an_orphan() -> None:
    assert not owner.is_orphan(owner.this_owner())


def test_a_dead_owner_of_this_host_is_an_orphan() -> None:
    assert owner.is_orphan(owner.owner_of(_dead_pid()))


def test_a_reused_pid_is_not_mistaken_for_the_owner() -> None:
    token, boot, pid, _ = owner.this_owner().split(":")
    assert owner.is_orphan(f"{token}:{boot}:{pid}:1")  # same pid, started at another time: another process


def test_an_earlier_boot_means_the_owner_is_gone() -> None:
    token, _, pid, started = owner.this_owner().split(":")
    assert owner.is_orphan(f"{token}:00000000-dead-boot:{pid}:{started}")


def test_another_host_or_pid_namespace_is_never_judged() -> None:
    _, boot, _, _ = owner.this_owner().split(":")
    assert not owner.is_orphan(f"0123456789abcdef:{boot}:{_dead_pid()}:5")  # a pid there means nothing here
    assert not owner.is_orphan("")
    assert not owner.is_orphan("garbage")


@pytest.mark.docker
def test_remove_orphans_takes_only_this_hosts_dead_owners() -> None:
    engine = Engine.connect(progress=lambda line: None)
    image = engine.ensure_image("debian-trixie")
    _, boot, _, _ = owner.this_owner().split(":")
    labels = {
        "dead": owner.owner_of(_dead_pid()),
        "alive": owner.this_owner(),
        "elsewhere": f"0123456789abcdef:{boot}:{_dead_pid()}:5",  # another machine sharing the engine
    }
    made = {}
    try:
        for name, value in labels.items():
            made[name] = engine.client.containers.create(
                image.tag, command=["true"], labels={LABEL: "1", owner.OWNER_LABEL: value,
                                                     f"{LABEL}.what": f"test-owner-{os.getpid()}"},
            )  # fmt: skip
        engine.remove_orphans()
        left = {c.id for c in engine.client.containers.list(all=True, filters={"label": owner.OWNER_LABEL})}
        assert made["dead"].id not in left
        assert made["alive"].id in left and made["elsewhere"].id in left
    finally:
        for container in made.values():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
