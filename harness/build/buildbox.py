"""The build container's side of a build: its environment and user, ccache statistics, collecting the
artifacts from the build directory, and the ``reproduce.sh`` that reruns the build by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
from pathlib import Path

from harness.engine.containers import ContainerSession, Engine, ImageRef
from harness.live.files import write_json_atomic

BUILD_UID = "1000:1000"  # builds never run as root; the host side chowns the writable dirs to it
CONTAINER_PATH = "/usr/lib/ccache:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CCACHE_KEYS = ("direct_cache_hit", "preprocessed_cache_hit", "cache_miss")


def build_env() -> dict[str, str]:
    """Environment of build containers. ccache runs in depend mode: on a miss it does not run the
    preprocessor a second time (meson passes -MD), which keeps a cold build close to a plain one."""
    return {
        "PATH": CONTAINER_PATH,
        "CCACHE_DIR": "/ccache",
        "CCACHE_DEPEND": "1",
        "HOME": "/tmp",
        "TEST_DIR": "/build/tests-scratch",
        "LANG": "C.UTF-8",
    }


def chown_tree(path: Path, owner: str) -> None:
    if os.geteuid() != 0:
        return
    uid, gid = (int(x) for x in owner.split(":"))
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


def ccache_stats(box: ContainerSession) -> dict[str, int]:
    result = box.exec(["ccache", "--print-stats"])
    stats = {}
    for line in result.output.splitlines():
        key, _, value = line.partition("\t")
        if key in CCACHE_KEYS and value.strip().isdigit():
            stats[key] = int(value)
    return stats


def ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in CCACHE_KEYS}
    hits = delta["direct_cache_hit"] + delta["preprocessed_cache_hit"]
    total = hits + delta["cache_miss"]
    delta["hit_rate_pct"] = round(100 * hits / total) if total else 0
    return delta


def collect_artifacts(obj: Path, artifacts: Path) -> list[str]:
    """Copy qemu-system-* binaries and the firmware the build produced; return the binary names."""
    (artifacts / "bin").mkdir(parents=True, exist_ok=True)
    names = []
    for binary in sorted(obj.glob("qemu-system-*")):
        if binary.is_file() and os.access(binary, os.X_OK) and "." not in binary.name:
            shutil.copy2(binary, artifacts / "bin" / binary.name)
            names.append(binary.name)
    share = artifacts / "share"
    share.mkdir(exist_ok=True)
    for blob in sorted((obj / "pc-bios").glob("*")) if (obj / "pc-bios").is_dir() else []:
        if blob.is_file() and blob.suffix in {".bin", ".rom", ".img", ".fd", ".dtb", ".elf"}:
            shutil.copy2(blob, share / blob.name)
    return names


def reproduce_script(
    cell_id: str, key: str, image: ImageRef, source: Path, configure: list[str], targets: list[str], jobs: int
) -> str:
    inner = (
        shlex.join(["/src/configure", *configure]) + " && " + shlex.join(["ninja", "-j", str(jobs), *targets])
    )
    env = " ".join(f"-e {shlex.quote(k + '=' + v)}" for k, v in build_env().items() if k != "CCACHE_DIR")
    return f"""#!/bin/sh
# Reruns build {cell_id} (key {key[:16]}) exactly: same image, patched source and flags, no network.
# Usage: reproduce.sh [BUILD_DIR]   (default: a fresh temporary directory; ccache is not used)
set -eu
build_dir=${{1:-$(mktemp -d)}}
chown {BUILD_UID} "$build_dir" 2>/dev/null || true
exec docker run --rm --init --network none --user {BUILD_UID} \\
  -v {shlex.quote(str(source))}:/src:ro -v "$build_dir":/build -w /build \\
  {env} -e CCACHE_DISABLE=1 \\
  {image.id} sh -c {shlex.quote(inner)}
"""


def version_in_image(engine: Engine, cache: Path, image: ImageRef, binary: str) -> tuple[int, str]:
    """``binary --version`` run in ``image``; remembered under ``cache`` per (image id, binary), since
    images are immutable (a prebuilt tree then costs no container start per run)."""
    key = hashlib.sha256(f"{image.id} {binary}".encode()).hexdigest()[:16]
    path = cache / f"{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        known = json.loads(path.read_text())
        return int(known["exit_code"]), str(known["output"])
    with engine.session(image, label=f"version {binary}") as box:
        result = box.exec([binary, "--version"])
    if result.exit_code == 0:
        write_json_atomic(
            path, {"exit_code": 0, "output": result.output, "image": image.id, "binary": binary}
        )
    return result.exit_code, result.output
