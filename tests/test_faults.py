"""Faults injected into real runs of the harness CLI: the expected verdict and message, then no leaked
container, QEMU process or temporary directory, and the other cells' results intact.

Builds use ``tests/data/fake-qemu``: a tiny tree with QEMU's build interface (``configure`` + ``ninja``
producing ``qemu-system-x86_64``), so the real container build path runs in seconds. Scenario faults use
Debian's prebuilt QEMU (``matrices/smoke.yaml``).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, run_harness, store_args
from enginekit import PrivateEngine

from harness.engine.sandbox import build_user

pytestmark = [pytest.mark.docker, pytest.mark.faults]

FAKE_TREE = REPO / "tests" / "data" / "fake-qemu"


def matrix(
    tmp_path: Path, profile_flags: list[str], extra_trees: str = "", name: str = "m.yaml", settings: str = ""
) -> Path:
    flags = "".join(f"      - {flag}\n" for flag in profile_flags) or "      []\n"
    text = (
        "trees:\n"
        f"  fake:\n    kind: local\n    image: debian-trixie\n    path: {FAKE_TREE}\n"
        f"{extra_trees}"
        "profiles:\n  p:\n    configure:\n" + flags + "scenarios: [boot]\naccels: [tcg]\n"
    )
    if settings:
        text += f"settings:\n{settings}"
    path = tmp_path / name
    path.write_text(text.replace("configure:\n      []\n", "configure: []\n"))
    return path


def harness_args(tmp_path: Path, run_id: str) -> list[str]:
    return store_args(tmp_path / "cache", tmp_path / "reports", run_id)


def build_record(tmp_path: Path, run_id: str, cell: str) -> dict:
    path = tmp_path / "reports" / run_id / "builds" / cell.replace("/", "__") / "build.json"
    return json.loads(path.read_text())


def containers_of(pid: int, host: str | None = None) -> list[str]:
    argv = [
        "docker",
        *(["-H", host] if host else []),
        "ps",
        "-a",
        "--filter",
        f"label=cpr-harness.owner-pid={pid}",
    ]
    return subprocess.run(
        [*argv, "--format", "{{.ID}}"], capture_output=True, text=True, check=True
    ).stdout.split()


def run_dirs(pid: int) -> list[str]:
    return [p.name for p in Path(tempfile.gettempdir()).glob(f"cpr-harness-run-{pid}-*")]


@pytest.fixture
def no_leaks() -> Iterator[list[int]]:
    """Yields a list to append harness pids to; afterwards none of them owns a container or a run dir."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        assert containers_of(pid) == [], f"containers of harness pid {pid} left behind"
        assert run_dirs(pid) == [], f"run directories of harness pid {pid} left behind"


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The harness as a terminal starts it: SIGINT at its default. A test run started in the background
    by a non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored, and Python keeps it ignored."""
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, preexec_fn=_default_sigint)  # fmt: skip


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_container(pid: int, timeout: float = 120, host: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if containers_of(pid, host):
            return
        time.sleep(0.2)
    raise AssertionError(f"harness pid {pid} never started a container")


def test_two_runs_on_one_cache_build_once(tmp_path: Path, no_leaks: list[int]) -> None:
    m = matrix(tmp_path, ["--sleep=4"])
    first, second = (start("build", "--matrix", str(m), *harness_args(tmp_path, f"r{n}")) for n in (1, 2))
    no_leaks += [first.pid, second.pid]
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    hits = [out for out, _ in outputs if "cache hit" in out]
    assert len(hits) == 1, "exactly one run builds, the other waits and reuses"
    records = [build_record(tmp_path, f"r{n}", "fake/p") for n in (1, 2)]
    assert records[0]["key"] == records[1]["key"] and all(r["verdict"] == "pass" for r in records)


def test_sigint_during_build_of_a_locked_down_container(tmp_path: Path, no_leaks: list[int]) -> None:
    proc = start("build", "--matrix", str(matrix(tmp_path, ["--sleep=120"])), *harness_args(tmp_path, "int"))
    no_leaks.append(proc.pid)
    wait_for_container(proc.pid)
    (info,) = json.loads(subprocess.run(["docker", "inspect", *containers_of(proc.pid)], capture_output=True,
                                        text=True, check=True).stdout)  # fmt: skip
    host = info["HostConfig"]
    assert info["Config"]["User"] == build_user().spec != "1000:1000" and not host["Privileged"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 4096 and host["Memory"] == 8192 << 20  # the settings' defaults
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/src"]["RW"] is False  # source read-only
    assert mounts["/ccache"]["Source"] == str(tmp_path / "cache" / "ccache" / "local-fake")  # its own domain
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    cache_record = next((tmp_path / "cache" / "builds").glob("*/build.json"))
    assert json.loads(cache_record.read_text())["verdict"] == "running"  # survives the interruption


def test_sigint_during_scenario_leaves_nothing(tmp_path: Path, no_leaks: list[int]) -> None:
    proc = start("test", "--matrix", "matrices/smoke.yaml", "--cells", "debian-11.1/prebuilt/*",
                 *harness_args(tmp_path, "int"))  # fmt: skip
    no_leaks.append(proc.pid)
    deadline = time.monotonic() + 180
    while not any("scenario" in (c or "") for c in _labels(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # QEMU is up inside the scenario container
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "reports" / "int" / "summary.json").read_text())
    assert len(summary) == 5 and "not-run" in summary.values()  # the report of what finished, the rest
    assert (tmp_path / "reports" / "int" / "index.html").is_file()


def _labels(pid: int) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=cpr-harness.owner-pid={pid}", "--format",
         '{{.Label "cpr-harness.what"}}'], capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return out.splitlines()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_in_build_dir(tmp_path: Path, no_leaks: list[int]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(cache)], check=True)
    try:
        done = run_harness("build", "--matrix", str(matrix(tmp_path, ["--fill=64"])),
                           *harness_args(tmp_path, "full"))  # fmt: skip
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    record = build_record(tmp_path, "full", "fake/p")
    assert record["verdict"] in ("fail", "error"), record  # the disk, not the tree: triage may say infra
    assert any("No space left on device" in line for line in record["log_tail"])
    assert "could not write" in record.get("error", "")  # the cache is full too; the run store got it
    assert "Traceback" not in done.stderr


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def test_checksum_mismatch_and_unreachable_url_keep_other_cells(
    tmp_path: Path, http_root: tuple[str, Path], no_leaks: list[int]
) -> None:
    base, root = http_root
    subprocess.run(
        ["tar", "-C", str(FAKE_TREE.parent), "-czf", str(root / "fake.tar.gz"), "fake-qemu"], check=True
    )
    trees = (
        f"  tampered:\n    kind: tarball\n    image: debian-trixie\n    url: {base}/fake.tar.gz\n"
        f"    sha256: '{'0' * 64}'\n"
        f"  offline:\n    kind: tarball\n    image: debian-trixie\n    url: http://127.0.0.1:9/fake.tar.gz\n"
        f"    sha256: '{'1' * 64}'\n"
    )
    done = run_harness("build", "--matrix", str(matrix(tmp_path, [], trees)), *harness_args(tmp_path, "bad"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    good = build_record(tmp_path, "bad", "fake/p")
    tampered = build_record(tmp_path, "bad", "tampered/p")
    offline = build_record(tmp_path, "bad", "offline/p")
    assert good["verdict"] == "pass"  # the other cell's result is intact
    assert tampered["verdict"] == "fail" and "0" * 64 in tampered["error"] and "sha256" in tampered["error"]
    assert offline["verdict"] in ("fail", "error") and "127.0.0.1:9" in offline["error"]
    downloads = tmp_path / "cache" / "downloads"
    assert not [p for p in downloads.glob("0000*/*") if p.is_file()]  # a mismatching file is never cached
    assert list((downloads / "rejected").iterdir())  # it is set aside


def test_configure_failure_is_stage_configure(tmp_path: Path, no_leaks: list[int]) -> None:
    done = run_harness("build", "--matrix", str(matrix(tmp_path, ["--fail"])), *harness_args(tmp_path, "cfg"))
    assert done.returncode == 1
    record = build_record(tmp_path, "cfg", "fake/p")
    assert record["stage"] == "configure" and any("--fail" in line for line in record["log_tail"])


def test_docker_engine_stopped_mid_build_is_infra(tmp_path: Path, private_engine: PrivateEngine) -> None:
    """The engine dies during a build: verdict error at stage infra (not the tree's fault), a clear
    message, and once the engine is back the next run removes the container the dead one left. The
    engine is a private dockerd this test started (own sockets and roots); the machine's is untouched."""
    from conftest import image_tag

    private_engine.load(image_tag("debian-trixie"), "cpr-harness/base:trixie")
    env = private_engine.env
    proc = start("build", "--matrix", str(matrix(tmp_path, ["--sleep=60"])), *harness_args(tmp_path, "down"),
                 env=env)  # fmt: skip
    wait_for_container(proc.pid, host=private_engine.host)
    private_engine.stop()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (1, 3), out + err
    assert "Traceback" not in err
    record = build_record(tmp_path, "down", "fake/p")
    assert record["verdict"] == "error" and record["stage"] == "infra", record
    assert "Docker engine" in record["error"]
    private_engine.start()
    assert containers_of(proc.pid, private_engine.host), "the dead run's container is still there"
    again = run_harness("build", "--matrix", str(matrix(tmp_path, [], name="again.yaml")),
                        *harness_args(tmp_path, "after"), env=env)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert containers_of(proc.pid, private_engine.host) == [], "the next run removes what the dead one left"


def test_conflicting_patch_names_patch_and_hunk(tmp_path: Path, no_leaks: list[int]) -> None:
    queue = tmp_path / "conflict-queue"  # beside the matrix: nothing is written into the repository
    queue.mkdir()
    (queue / "series").write_text("0001-touch-configure.patch\n")
    (queue / "0001-touch-configure.patch").write_text(
        "--- a/configure\n+++ b/configure\n@@ -1,3 +1,3 @@\n #!/bin/sh\n-# this line is not in the tree\n"
        "+# so the hunk cannot apply\n set -eu\n"
    )
    m = matrix(tmp_path, []).read_text().replace("    path:", "    patches: ./conflict-queue\n    path:", 1)
    (tmp_path / "m.yaml").write_text(m)
    done = run_harness("build", "--matrix", str(tmp_path / "m.yaml"), *harness_args(tmp_path, "patch"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    record = build_record(tmp_path, "patch", "fake/p")
    assert record["verdict"] == "fail" and record["stage"] == "patch"
    (status,) = record["series"]["statuses"]
    assert status["status"] == "failed" and status["name"] == "0001-touch-configure.patch"
    assert "Hunk #1 FAILED" in status["detail"]


def test_qemu_lacking_a_mode_is_unsupported_not_failed(tmp_path: Path, no_leaks: list[int]) -> None:
    cell = "debian-10.0/prebuilt/cpr-exec/tcg"
    done = run_harness(
        "test", "--matrix", "matrices/smoke.yaml", "--cells", cell, *harness_args(tmp_path, "mode")
    )
    assert done.returncode == 0, done.stdout + done.stderr  # unsupported is not a failure
    result = json.loads((tmp_path / "reports" / "mode" / "results" / "debian-10.0__prebuilt__cpr-exec__tcg"
                         / "result.json").read_text())  # fmt: skip
    assert result["verdict"] == "unsupported"
    assert "Parameter 'mode' does not accept value 'cpr-exec'" in result["reason"]


def test_links_a_hostile_build_plants_are_not_copied(tmp_path: Path, no_leaks: list[int]) -> None:
    """The tree's build leaves pc-bios/evil.bin -> /etc/passwd and qemu-system-evil -> /etc/shadow:
    neither reaches the artifacts; the record says what was refused."""
    proc = start(
        "build", "--matrix", str(matrix(tmp_path, ["--plant-links"])), *harness_args(tmp_path, "links")
    )
    no_leaks.append(proc.pid)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    record = build_record(tmp_path, "links", "fake/p")
    artifacts = Path(record["artifacts"]["dir"])
    assert sorted(p.name for p in (artifacts / "share").iterdir()) == ["fake.bin"]
    assert record["artifacts"]["binaries"] == ["qemu-system-x86_64"]
    assert (
        "pc-bios/evil.bin: a symlink" in record["error"] and "qemu-system-evil: a symlink" in record["error"]
    )
    assert not any(p.is_symlink() for p in artifacts.rglob("*"))


def test_pids_limit_of_the_matrix_stops_a_fork_bomb_in_a_build(tmp_path: Path, no_leaks: list[int]) -> None:
    m = matrix(tmp_path, ["--forks=500"], settings="  pids_limit: 64\n")
    proc = start("build", "--matrix", str(m), *harness_args(tmp_path, "forks"))
    no_leaks.append(proc.pid)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err
    record = build_record(tmp_path, "forks", "fake/p")
    assert record["stage"] == "configure" and any("fork" in line.lower() for line in record["log_tail"])


def test_sigint_with_parallel_cells_abandons_the_running_ones(tmp_path: Path, no_leaks: list[int]) -> None:
    """Ctrl-C with --jobs 2: the cells running at that moment are not waited for (their containers are
    removed at once), they show as not run, and nothing is left behind."""
    cells = ["debian-11.1/prebuilt/normal/tcg", "debian-11.1/prebuilt/cpr-reboot/tcg",
             "debian-11.1/prebuilt/cpr-transfer/tcg", "debian-11.1/prebuilt/cpr-exec/tcg"]  # fmt: skip
    proc = start("test", "--matrix", "matrices/smoke.yaml", "--jobs", "2", "--cells", *cells,
                 *harness_args(tmp_path, "par"))  # fmt: skip
    no_leaks.append(proc.pid)
    deadline = time.monotonic() + 180
    running: list[str] = []
    while len(running) < 2 and time.monotonic() < deadline:
        running = [w.removeprefix("scenario ") for w in _labels(proc.pid) if w.startswith("scenario ")]
        time.sleep(0.05)
    assert len(running) == 2, "two cells never ran at once"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "reports" / "par" / "summary.json").read_text())
    assert sorted(summary) == sorted(cells)
    assert all(summary[cell] == "not-run" for cell in running), (running, summary)
