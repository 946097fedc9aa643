"""Debian root filesystems without a registry: ``debootstrap`` from the host's own apt configuration.

Used when ``debian:<suite>`` cannot be pulled (no registry answers, as on the machines this project runs
on). The mirror is read from the host's apt sources, never written into the harness; without one,
debootstrap uses its own default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from harness.errors import InfraError


def bootstrap_root(suite: str, load: Callable[[IO[bytes]], object], progress: Callable[[str], None]) -> None:
    """debootstrap ``suite`` (minbase) into a temporary directory and hand its tar stream to ``load``."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise InfraError(
            f"cannot pull debian:{suite} and cannot bootstrap it here "
            "(debootstrap needs root and the debootstrap package)",
            hint="run `nox -s provision` as root, or make a registry reachable",
        )
    mirror = host_debian_mirror()
    with tempfile.TemporaryDirectory(prefix=f"cpr-harness-debootstrap-{suite}-") as tmp:
        root = Path(tmp) / "root"
        argv = ["debootstrap", "--variant=minbase", suite, str(root)] + ([mirror] if mirror else [])
        progress(f"base {suite}: {' '.join(argv)} (about 30 s)")
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(
                f"debootstrap {suite} failed (exit {proc.returncode}):\n"
                + "\n".join(proc.stdout.splitlines()[-15:] + proc.stderr.splitlines()[-15:]),
                hint="check the host's apt configuration and network to the mirror",
            )
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            load(tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()


def host_debian_mirror(
    os_release: Path = Path("/etc/os-release"), apt_dir: Path = Path("/etc/apt")
) -> str | None:
    """The Debian archive URI the host's own apt configuration uses for its release, if any.

    Reads one-line ``.list`` and deb822 ``.sources`` files; returns None when nothing fits, in which
    case debootstrap uses its built-in default.
    """
    codename = ""
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                codename = line.split("=", 1)[1].strip().strip('"')
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and codename in fields.get("Suites", "").split():
                    return fields.get("URIs", "").split()[0] if fields.get("URIs") else None
        else:
            for line in text.splitlines():
                parts = [p for p in line.split() if not p.startswith("[")]
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == codename:
                    return parts[1]
    return None
