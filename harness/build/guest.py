"""The Linux test guest, assembled once and cached by content hash: ``<cache>/guests/<key16>/``.

The image ``containers/linux-guest`` (Debian trixie's cloud kernel, busybox-static, SeaBIOS, OVMF, and
its ``cpr-assemble-guest`` script) builds the kernel + initramfs + firmware folder, with the harness's
``/init`` (``harness/live/guest/init.sh``) and the kernel modules the workload needs. The key covers the
image id (its recipe and packages), the init script and the module list, so the guest is rebuilt exactly
when one of them changes; a second run is a cache hit. ``guest.json`` in the folder is the provenance
every scenario result on it records: kernel release and package versions, sha256 of the kernel, the
initramfs and the firmware. What the assembly container wrote is data: only regular files (no links, no
special files) are accepted, read without following links, with bounded sizes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.engine.containers import Engine, ImageRef, Mount
from harness.engine.locks import file_lock
from harness.engine.sandbox import Limits, User
from harness.errors import InfraError
from harness.live.files import write_json_atomic
from harness.live.guest import linux
from harness.store.untrusted import read_untrusted

GUEST_IMAGE = "linux-guest"
ASSEMBLE = "/usr/local/bin/cpr-assemble-guest"
FIRMWARE = ("bios-256k.bin", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd")


@dataclass(frozen=True)
class GuestBundle:
    """An assembled guest: ``vmlinuz``, ``initrd.img`` and ``fw/`` in ``folder``."""

    folder: Path
    provenance: dict[str, str]
    cache_hit: bool = False

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def firmware(self) -> Path:
        return self.folder / "fw"


MAX_FILE = 256 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _regular_files_only(work: Path) -> None:
    """Refuse an assembly output holding anything but folders and regular files (a link the host would
    follow when it hashes, or a scenario container when it mounts the folder)."""
    for root, dirs, files in os.walk(work, followlinks=False):
        for name in dirs + files:
            mode = os.lstat(Path(root) / name).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise InfraError(
                    f"assembling the Linux guest: refused {Path(root) / name} (not a regular file)"
                )


def _untrusted_sha256(folder: Path, name: str) -> str:
    return hashlib.sha256(read_untrusted(folder, name, MAX_FILE)).hexdigest()


def guest_key(image_id: str, init: bytes, modules: tuple[str, ...]) -> str:
    blob = json.dumps({"image": image_id, "init": hashlib.sha256(init).hexdigest(), "modules": list(modules)})
    return hashlib.sha256(blob.encode()).hexdigest()


def _load(folder: Path) -> GuestBundle | None:
    try:
        provenance = json.loads((folder / "guest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(provenance, dict) or not all((folder / p).is_file() for p in ("vmlinuz", "initrd.img")):
        return None
    return GuestBundle(folder, {str(k): str(v) for k, v in provenance.items()}, cache_hit=True)


def assemble_guest(engine: Engine, cache: Path, progress: Callable[[str], None] = print) -> GuestBundle:
    """The Linux guest of this harness version, from the cache or assembled now (in a container without
    network). Raises InfraError when the image or the assembly fails (every Linux cell is then ``error``)."""
    image = engine.ensure_image(GUEST_IMAGE)
    init = linux.INIT_SCRIPT.read_bytes()
    key = guest_key(image.id, init, linux.MODULES)
    guests = cache / "guests"
    folder = guests / key[:16]
    with file_lock(guests / f"{key[:16]}.lock"):
        found = _load(folder)
        if found is not None:
            progress(f"guest: cache hit {folder} (kernel {found.provenance.get('kernel', '?')})")
            return found
        progress(f"guest: assembling the Linux guest in {image.tag}")
        started = datetime.now(UTC)
        work = Path(tempfile.mkdtemp(prefix=".assemble-", dir=guests))
        try:
            _assemble(engine, image, work)
            _regular_files_only(work)
            text = read_untrusted(work, "versions.txt", 1 << 16).decode("utf-8", "replace")
            versions = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
            provenance = {
                "key": key,
                "image": image.tag,
                "image_id": image.id,
                **versions,
                "kernel_sha256": _untrusted_sha256(work, "vmlinuz"),
                "initramfs_sha256": _untrusted_sha256(work, "initrd.img"),
                "init_sha256": hashlib.sha256(init).hexdigest(),
                **{f"{name}_sha256": _untrusted_sha256(work / "fw", name) for name in FIRMWARE},
                "assembled_at": started.isoformat(timespec="seconds"),
            }
            write_json_atomic(work / "guest.json", provenance)
            work.chmod(0o755)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(work, folder)
        except (OSError, ValueError) as exc:
            raise InfraError(f"assembling the Linux guest in {guests}: {exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        progress(f"guest: assembled {folder} (kernel {provenance.get('kernel', '?')})")
        return GuestBundle(folder, provenance)


def _assemble(engine: Engine, image: ImageRef, work: Path) -> None:
    """Run the assembly as the harness's own uid (it owns ``work``; no capability is needed: the
    initramfs holds no device node, its init opens the console once devtmpfs is mounted)."""
    mounts = [Mount(work, "/out"), Mount(linux.INIT_SCRIPT, "/in/init.sh", read_only=True)]
    user = User(os.getuid(), os.getgid())
    with engine.session(
        image, mounts=mounts, network=False, user=user, limits=Limits(2048, 512), label="guest assembly"
    ) as box:
        run = box.exec(["sh", ASSEMBLE, "/out", "/in/init.sh", *linux.MODULES], timeout=600)
    if run.exit_code != 0:
        tail = "\n".join(run.output.strip().splitlines()[-10:])
        raise InfraError(f"assembling the Linux guest failed (exit {run.exit_code}):\n{tail}")


def custom_provenance(kernel: Path, initrd: Path) -> dict[str, str]:
    """Provenance of a kernel and initramfs a matrix names instead of the assembled ones."""
    return {
        "kernel": f"(matrix) {kernel}",
        "kernel_sha256": _sha256(kernel),
        "initramfs": f"(matrix) {initrd}",
        "initramfs_sha256": _sha256(initrd),
    }
