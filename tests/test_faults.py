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

pytestmark = [pytest.mark.docker, pytest.mark.faults]

FAKE_TREE = REPO / "tests" / "data" / "fake-qemu"


def matrix(tmp_path: Path, profile_flags: list[str], extra_trees: str = "", name: str = "m.yaml") -> Path:
    flags = "".join(f"      - {flag}\n" for flag in profile_flags) or "      []\n"
    text = (
        "trees:\n"
        f"  fake:\n    kind: local\n    image: debian-trixie\n    path: {FAKE_TREE}\n"
        f"{extra_trees}"
        "profiles:\n  p:\n    configure:\n" + flags + "scenarios: [boot]\naccels: [tcg]\n"
    )
    path = tmp_path / name
    path.write_text(text.replace("configure:\n      []\n", "configure: []\n"))
    return path


def harness_args(tmp_path: Path, run_id: str) -> list[str]:
    return store_args(tmp_path / "cache", tmp_path / "reports", run_id)


def build_record(tmp_path: Path, run_id: str, cell: str) -> dict:
    path = tmp_path / "reports" / run_id / "builds" / cell.replace("/", "__") / "build.json"
    return json.loads(path.read_text())


def containers_of(pid: int) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=cpr-harness.owner-pid={pid}", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.split()


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


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def wait_for_container(pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if containers_of(pid):
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
    assert info["Config"]["User"] == "1000:1000" and not info["HostConfig"]["Privileged"]
    assert info["HostConfig"]["NetworkMode"] == "none"
    assert {m["Destination"]: m["RW"] for m in info["Mounts"]}["/src"] is False  # source read-only
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


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping and starting dockerd needs root")
def test_docker_engine_stopped_mid_build_is_infra(tmp_path: Path) -> None:
    """The engine dies during a build: verdict error at stage infra (not the tree's fault), a clear
    message, and once the engine is back the next run removes the container the dead one left."""
    proc = start("build", "--matrix", str(matrix(tmp_path, ["--sleep=60"])), *harness_args(tmp_path, "down"))
    try:
        wait_for_container(proc.pid)
        subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
        out, err = proc.communicate(timeout=120)
    finally:
        subprocess.run([sys.executable, "-m", "harness", "provision"], cwd=REPO, check=True, timeout=180)
    assert proc.returncode in (1, 3), out + err
    assert "Traceback" not in err
    record = build_record(tmp_path, "down", "fake/p")
    assert record["verdict"] == "error" and record["stage"] == "infra", record
    assert "Docker engine" in record["error"]
    again = run_harness("build", "--matrix", "matrices/smoke.yaml", "--cells", "debian-11.1/prebuilt",
                        *harness_args(tmp_path, "after"))  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert containers_of(proc.pid) == [], "the next run removes what the killed engine left"


def test_conflicting_patch_names_patch_and_hunk(tmp_path: Path, no_leaks: list[int]) -> None:
    queue = REPO / "patches" / f"_fault-conflict-{os.getpid()}"
    queue.mkdir()
    try:
        (queue / "series").write_text("0001-touch-configure.patch\n")
        (queue / "0001-touch-configure.patch").write_text(
            "--- a/configure\n+++ b/configure\n@@ -1,3 +1,3 @@\n #!/bin/sh\n-# this line is not in the tree\n"
            "+# so the hunk cannot apply\n set -eu\n"
        )
        m = matrix(tmp_path, []).read_text().replace("    path:", f"    patches: {queue.name}\n    path:", 1)
        (tmp_path / "m.yaml").write_text(m)
        done = run_harness("build", "--matrix", str(tmp_path / "m.yaml"), *harness_args(tmp_path, "patch"))
    finally:
        for path in sorted(queue.iterdir()):
            path.unlink()
        queue.rmdir()
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
