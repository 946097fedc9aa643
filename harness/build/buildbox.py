"""The build container's side of a build: its environment and user, ccache statistics, collecting the
artifacts from the build directory, and the ``reproduce.sh`` that reruns the build by hand.

The build directory is written by the tree's own build system, so it is untrusted: artifacts are copied
only when they are regular files directly in it (or in its ``pc-bios/`` folder, itself not a link), each
opened without following a symlink (:mod:`harness.store.untrusted`). Builds run as the dedicated
:data:`~harness.engine.sandbox.BUILD_USER`; the host hands it only the folders it must write (the
build's own folder and its ccache domain), by changing the owner of those folders alone, never of what is
inside them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import stat
from pathlib import Path

from harness.engine.containers import ContainerSession, Engine, ImageRef, Limits
from harness.engine.sandbox import HARDENING, build_user, give_folder, scenario_user
from harness.live.files import write_json_atomic
from harness.store.untrusted import copy_untrusted, open_folder

ARTIFACT_MAX_BYTES = 2 << 30
FIRMWARE_SUFFIXES = {".bin", ".rom", ".img", ".fd", ".dtb", ".elf"}
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


def build_dir_for(obj: Path) -> None:
    """Prepare the build directory: kept as it is when the build user owns it (an interrupted build
    goes on incrementally), else removed first (it was made for another uid, by an earlier release)."""
    user = build_user()
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(obj)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != user.uid:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(obj)  # never follows a symlink inside
            else:
                obj.unlink()
    give_to_build_user(obj)


def give_to_build_user(folder: Path) -> None:
    """Let the build user write ``folder`` (a folder the host made): its owner changes, nothing inside it
    is touched (a walk through a folder a container writes could be steered by a planted symlink)."""
    folder.mkdir(parents=True, exist_ok=True)
    give_folder(folder, build_user())


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


def _entries(dir_fd: int) -> tuple[list[tuple[str, os.stat_result]], list[str]]:
    """(regular files with their lstat, symlinks) of an open folder, by name."""
    files, links = [], []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                files.append((entry.name, st))
            elif stat.S_ISLNK(st.st_mode):
                links.append(entry.name)
    return sorted(files, key=lambda item: item[0]), sorted(links)


def collect_artifacts(obj: Path, artifacts: Path) -> tuple[list[str], list[str]]:
    """Copy the ``qemu-system-*`` binaries and the firmware the build produced, regular files only, never
    through a symlink. Returns (binary names, what was refused and why)."""
    (artifacts / "bin").mkdir(parents=True, exist_ok=True)
    share = artifacts / "share"
    share.mkdir(exist_ok=True)
    names: list[str] = []
    with open_folder(obj) as top, contextlib.ExitStack() as stack:
        files, links = _entries(top)
        refused = [f"{name}: a symlink" for name in links if name.startswith("qemu-system-")]
        for name, st in files:
            if name.startswith("qemu-system-") and "." not in name and st.st_mode & stat.S_IXUSR:
                copy_untrusted(top, name, artifacts / "bin" / name, ARTIFACT_MAX_BYTES, 0o755)
                names.append(name)
        try:
            bios = stack.enter_context(open_folder(Path("pc-bios"), dir_fd=top))
        except FileNotFoundError:
            return names, refused
        except ValueError:
            return names, [*refused, "pc-bios: a symlink or not a folder"]
        files, links = _entries(bios)
        refused += [f"pc-bios/{name}: a symlink" for name in links]
        for name, _ in files:
            if Path(name).suffix in FIRMWARE_SUFFIXES:
                copy_untrusted(bios, name, share / name, ARTIFACT_MAX_BYTES, 0o644)
    return names, refused


def reproduce_script(
    cell_id: str, key: str, image: ImageRef, source: Path, configure: list[str], targets: list[str], jobs: int
) -> str:
    inner = (
        shlex.join(["/src/configure", *configure]) + " && " + shlex.join(["ninja", "-j", str(jobs), *targets])
    )
    env = " ".join(f"-e {shlex.quote(k + '=' + v)}" for k, v in build_env().items() if k != "CCACHE_DIR")
    user = build_user().spec
    hardening = " ".join(
        [f"--cap-drop {c}" for c in HARDENING.cap_drop]
        + [f"--security-opt {o}" for o in HARDENING.security_opt]
    )
    return f"""#!/bin/sh
# Reruns build {cell_id} (key {key[:16]}) exactly: same image, patched source and flags, no network.
# Usage: reproduce.sh [BUILD_DIR]   (default: a fresh temporary directory; ccache is not used)
set -eu
build_dir=${{1:-$(mktemp -d)}}
chown {user} "$build_dir"
exec docker run --rm --init --network none --user {user} {hardening} \\
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
    with engine.session(
        image, user=scenario_user(), limits=Limits(1024, 256), label=f"version {binary}"
    ) as box:
        result = box.exec([binary, "--version"])
    if result.exit_code == 0:
        write_json_atomic(
            path, {"exit_code": 0, "output": result.output, "image": image.id, "binary": binary}
        )
    return result.exit_code, result.output
