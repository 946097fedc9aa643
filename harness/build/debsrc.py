"""Debian source packages: download with ``apt-get source`` in a container, verify on the host.

Used by :mod:`harness.sources` for ``kind: debian-source`` trees.

The download runs inside the tree's build image (its apt configuration has the ``deb-src`` lines), as
the dedicated fetch user without any capability (apt keeps its package lists in the container's
``/tmp``), with the cache's temporary directory mounted at ``/out``. apt itself checks the files against
the signed index; the host then takes only the regular files out of ``/out`` (anything else is removed
and named) and re-checks every file named in the ``.dsc``'s ``Checksums-Sha256`` section, on the first
fetch and on every cache hit. Nothing of Debian's packaging is applied: the harness builds the upstream
``.orig.tar.*`` unpatched.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build.download import Progress, disk_full_is_infra, reject_file, sha256_file
from harness.errors import HarnessError, InfraError, SourceError

if TYPE_CHECKING:
    from harness.engine.containers import ContainerSession, Engine, ImageRef

_FETCH_INFO = ".cpr-fetch.json"
# apt as an ordinary user: private package lists and archive cache (created by the first command)
APT_OPTS = ["-o", "Dir::State::Lists=/tmp/apt/lists", "-o", "Dir::Cache=/tmp/apt/cache",
            "-o", "Acquire::Check-Valid-Until=false"]  # fmt: skip
_ORIG_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*_[^_/]+\.orig\.tar\.(xz|gz|bz2|lzma)$")


@dataclass(frozen=True)
class DscFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Dsc:
    source: str
    version: str
    files: list[DscFile]

    @property
    def orig(self) -> DscFile:
        """The upstream tarball (``<pkg>_<upstream>.orig.tar.*``)."""
        origs = [f for f in self.files if _ORIG_RE.match(f.name)]
        if len(origs) != 1:
            names = ", ".join(f.name for f in self.files)
            raise SourceError(
                f"{self.source} {self.version}: expected one .orig.tar.* in the .dsc, found: {names}"
            )
        return origs[0]


def dsc_filename(package: str, version: str) -> str:
    """``qemu``, ``1:10.2.2+ds-1`` -> ``qemu_10.2.2+ds-1.dsc`` (Debian drops the epoch from file names)."""
    return f"{package}_{version.split(':', 1)[-1]}.dsc"


def cache_dirname(package: str, version: str) -> str:
    """Directory name for the downloaded set; ``:`` becomes ``%3a`` (as in apt's own archive cache)."""
    return f"{package}_{version.replace(':', '%3a')}"


def parse_dsc(text: str, origin: str = ".dsc") -> Dsc:
    """Parse the fields of a (possibly PGP-clearsigned) ``.dsc`` that the harness needs."""
    lines = text.splitlines()
    if lines and lines[0].startswith("-----BEGIN PGP SIGNED MESSAGE"):
        try:
            start = lines.index("") + 1
        except ValueError:
            start = len(lines)
        end = next((i for i, ln in enumerate(lines) if ln.startswith("-----BEGIN PGP SIGNATURE")), len(lines))
        lines = lines[start:end]
    fields: dict[str, list[str]] = {}
    current: str | None = None
    for ln in lines:
        if not ln.strip():
            if fields:
                break  # end of the first (only) paragraph
            continue
        if ln[0] in " \t":
            if current is not None:
                fields[current].append(ln.strip())
            continue
        key, sep, value = ln.partition(":")
        if not sep:
            raise SourceError(f"{origin}: malformed line {ln!r}")
        current = key.strip().lower()
        fields[current] = [value.strip()] if value.strip() else []
    missing = [k for k in ("Source", "Version", "Checksums-Sha256") if k.lower() not in fields]
    if missing:
        raise SourceError(f"{origin}: missing field(s) {', '.join(missing)}")
    files: list[DscFile] = []
    for entry in fields["checksums-sha256"]:
        parts = entry.split()
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]) or not parts[1].isdigit():
            raise SourceError(f"{origin}: malformed Checksums-Sha256 entry {entry!r}")
        name = parts[2]
        if "/" in name or name in (".", ".."):
            raise SourceError(f"{origin}: unsafe file name {name!r} in Checksums-Sha256")
        files.append(DscFile(name=name, size=int(parts[1]), sha256=parts[0].lower()))
    if not files:
        raise SourceError(f"{origin}: Checksums-Sha256 lists no files")
    return Dsc(source=fields["source"][0], version=fields["version"][0], files=files)


def verify_dir(directory: Path, package: str, version: str) -> Dsc:
    """Check the ``.dsc`` in ``directory`` names ``package``/``version`` and every file it lists matches.

    Raises :class:`SourceError` naming the file, the expected and the actual digest (or size).
    """
    dsc_path = directory / dsc_filename(package, version)
    if not dsc_path.is_file():
        raise SourceError(f"{package}={version}: {dsc_path.name} not found in {directory}")
    dsc = parse_dsc(dsc_path.read_text(encoding="utf-8", errors="replace"), origin=str(dsc_path))
    if dsc.source != package or dsc.version != version:
        raise SourceError(f"{dsc_path}: describes {dsc.source}={dsc.version}, expected {package}={version}")
    for f in dsc.files:
        path = directory / f.name
        if not path.is_file():
            raise SourceError(f"{package}={version}: {f.name} (listed in {dsc_path.name}) is missing")
        size = path.stat().st_size
        if size != f.size:
            raise SourceError(
                f"{package}={version}: {f.name} has {size} bytes, {dsc_path.name} says {f.size}"
            )
        actual = sha256_file(path)
        if actual != f.sha256:
            raise SourceError(
                f"{package}={version}: sha256 mismatch for {f.name}: expected {f.sha256} "
                f"(from {dsc_path.name}), got {actual}"
            )
    dsc.orig  # noqa: B018 - raises when the .dsc names no (or several) upstream tarballs
    return dsc


def fetch_info(directory: Path) -> dict[str, object]:
    """What the first fetch recorded (the URLs apt used), or ``{}``."""
    try:
        data = json.loads((directory / _FETCH_INFO).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _tail(output: str, n: int = 15) -> str:
    return "\n".join(output.rstrip().splitlines()[-n:])


def available_versions(session: ContainerSession, package: str) -> list[str]:
    """Versions of source ``package`` that the image's deb-src indexes list (``apt-cache showsrc``)."""
    res = session.exec(["apt-cache", *APT_OPTS, "showsrc", package])
    versions: list[str] = []
    pkg = None
    for ln in res.output.splitlines():
        if ln.startswith("Package:"):
            pkg = ln.split(":", 1)[1].strip()
        elif ln.startswith("Version:") and pkg == package:
            v = ln.split(":", 1)[1].strip()
            if v not in versions:
                versions.append(v)
    return versions


def _apt_failure(
    session: ContainerSession, tree: str, package: str, version: str, output: str
) -> HarnessError:
    """The error to raise for a failed ``apt-get source``: unknown version, 404, disk full, other."""
    spec = f"{package}={version}"
    if "No space left on device" in output:
        return InfraError(f"tree {tree}: disk full while apt-get downloaded {spec}:\n{_tail(output)}")
    versions = available_versions(session, package)
    listed = ", ".join(versions) if versions else "none"
    not_found = [
        ln.split()[4] for ln in output.splitlines() if ln.startswith("E: Failed to fetch ") and " 404 " in ln
    ]
    if not_found:
        return SourceError(
            f"tree {tree}: the mirror's index lists {spec} but its files are missing (HTTP 404): "
            f"{', '.join(not_found)}",
            hint=f"pick another version (the index lists: {listed}), or use a tarball tree",
        )
    if "Can not find version" in output or "Unable to find a source package" in output:
        if versions:
            return SourceError(
                f"tree {tree}: the mirror has no Debian source {spec}; it lists: {listed}",
                hint="set version to one of these",
            )
        return SourceError(
            f"tree {tree}: no deb-src index of the image lists a source package {package!r}",
            hint="check package; the image needs deb-src lines for the suite that has it",
        )
    return SourceError(f"tree {tree}: apt-get source {spec} failed:\n{_tail(output)}")


def _claim(folder: Path) -> None:
    """Make what the container left in ``folder`` the host's: regular files are kept (owned by the host
    user), anything else (a link, a folder, a device) is removed. The container has exited."""
    for entry in os.scandir(folder):
        st = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        elif os.geteuid() == 0 and st.st_uid != 0:
            os.lchown(entry.path, os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.lchown(folder, os.getuid(), os.getgid())


def download(
    tree: str,
    package: str,
    version: str,
    dest: Path,
    *,
    engine: Engine,
    image: ImageRef,
    progress: Progress,
) -> Dsc:
    """``apt-get source --download-only`` into a temp dir, verify, and rename it to ``dest``."""
    from harness.engine.containers import Mount  # lazy: containers needs the docker SDK
    from harness.engine.sandbox import fetch_user, give_folder

    spec = f"{package}={version}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name.replace('%3a', '_')}-", dir=dest.parent))
    try:
        progress(f"tree {tree}: apt-get source {spec} in {image.tag}")
        user = fetch_user()
        if os.geteuid() == 0:
            give_folder(tmp, user)
        with engine.session(
            image, mounts=[Mount(tmp, "/out")], network=True, user=user, label="apt-source"
        ) as s:
            s.exec(["mkdir", "-p", "/tmp/apt/lists/partial", "/tmp/apt/cache/archives/partial"])
            res = s.exec(["apt-get", *APT_OPTS, "update"])
            if res.exit_code != 0:
                raise InfraError(
                    f"tree {tree}: apt-get update failed in {image.tag} (exit {res.exit_code}):\n"
                    + _tail(res.output),
                    hint="check the network and the image's apt configuration",
                )
            res = s.exec(["apt-get", *APT_OPTS, "source", "--download-only", spec], workdir="/out")
            if res.exit_code != 0:
                raise _apt_failure(s, tree, package, version, res.output)
        _claim(tmp)
        urls = [
            ln.split()[1] for ln in res.output.splitlines() if ln.startswith("Get:") and len(ln.split()) > 1
        ]
        with disk_full_is_infra(f"downloading {spec}", dest.parent):
            (tmp / _FETCH_INFO).write_text(json.dumps({"mirrors": sorted(set(urls))}))
            try:
                dsc = verify_dir(tmp, package, version)
            except SourceError as exc:
                moved = reject_file(tmp, dest.parent.parent / "rejected", "debian")
                raise SourceError(f"tree {tree}: {exc.message} (download set aside as {moved})") from exc
            try:
                os.rename(tmp, dest)
            except OSError as exc:  # another process finished the same set first: keep theirs
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not dest.is_dir():
                    raise
        return dsc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
