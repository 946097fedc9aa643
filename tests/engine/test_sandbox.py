"""What a harness container may do (harness.engine.sandbox), seen from inside real containers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.engine.containers import Engine, Limits
from harness.engine.sandbox import BUILD_USER, ROOT, SCENARIO_USER, User, build_user, kvm_user, scenario_user


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.connect(progress=lambda line: None)


def _status(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


@pytest.mark.docker
def test_every_container_is_unprivileged_and_limited(engine: Engine) -> None:
    image = engine.ensure_image("debian-trixie")
    with engine.session(image, user=build_user(), limits=Limits(memory_mb=700, pids=77), label="test") as box:
        status = _status(box.exec(["cat", "/proc/self/status"]).output)
        ident = box.exec(["id", "-u"]).output.strip()
        info = engine.client.api.inspect_container(box.id)
    assert ident == str(build_user().uid) != "0"
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 77 and host["Memory"] == 700 << 20 and host["MemorySwap"] == 700 << 20
    assert not host["Privileged"]


@pytest.mark.docker
def test_pids_limit_stops_a_fork_bomb(engine: Engine) -> None:
    image = engine.ensure_image("debian-trixie")
    with engine.session(image, user=scenario_user(), limits=Limits(pids=40), label="test") as box:
        done = box.exec(["sh", "-c", "for i in $(seq 100); do sleep 30 & done 2>&1; echo started; wait"],
                        timeout=60)  # fmt: skip
    assert "fork" in done.output.lower() or "resource temporarily unavailable" in done.output.lower()


@pytest.mark.docker
@pytest.mark.skipif(not os.path.exists("/dev/kvm"), reason="this host has no /dev/kvm")
def test_kvm_cell_opens_dev_kvm_without_root(engine: Engine) -> None:
    """When /dev/kvm is group read-write (udev's default), the scenario user gets the group, not root."""
    user = kvm_user()
    if stat.S_IMODE(os.stat("/dev/kvm").st_mode) & 0o060 == 0o060:
        assert not user.root and os.stat("/dev/kvm").st_gid in user.groups
    probe = "import os; os.close(os.open('/dev/kvm', os.O_RDWR)); print('kvm open as', os.getuid())"
    with engine.session(
        engine.ensure_image("qemu-trixie"), user=user, devices=["/dev/kvm:/dev/kvm:rwm"], label="test"
    ) as box:
        done = box.exec(["python3", "-c", probe])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"kvm open as {user.uid}"


def test_dedicated_uids_are_nobodys_login() -> None:
    assert BUILD_USER.uid not in (0, 1000) and SCENARIO_USER.uid not in (0, 1000)
    assert len({BUILD_USER.uid, SCENARIO_USER.uid}) == 2
    if os.geteuid() == 0:
        assert build_user() == BUILD_USER and scenario_user() == SCENARIO_USER
    else:
        assert build_user() == User(os.getuid(), os.getgid())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown of a test device node needs root")
@pytest.mark.parametrize(("mode", "expected"), [(0o660, "group"), (0o666, "plain"), (0o600, "root")])
def test_kvm_user_follows_the_device_permissions(tmp_path: Path, mode: int, expected: str) -> None:
    node = tmp_path / "kvm"
    node.write_bytes(b"")
    os.chown(node, 0, 4242)
    os.chmod(node, mode)
    user = kvm_user(node)
    if expected == "group":
        assert user == User(SCENARIO_USER.uid, SCENARIO_USER.gid, (4242,))
    elif expected == "plain":
        assert user == SCENARIO_USER
    else:
        assert user == ROOT  # only root may open it: root inside the container, still without capabilities
