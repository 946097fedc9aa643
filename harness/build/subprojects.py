"""Meson subprojects (``subprojects/*.wrap``) that a tree lacks and meson would have to download.

Fetching never fails because of them: most are optional (even the Debian ``+ds`` and release tarballs
lack dtc, slirp or the Rust crates), and only the build knows its configure flags.
"""

from __future__ import annotations

import configparser
from pathlib import Path


def missing_subprojects(root: Path) -> list[dict[str, str]]:
    """Wraps in ``root/subprojects`` whose directory is absent or empty and that meson would download.

    Each entry: ``{"name": <wrap file stem>, "directory": ..., "type": "wrap-git"|..., "url": ...}``.
    """
    sub = root / "subprojects"
    missing: list[dict[str, str]] = []
    for wrap in sorted(sub.glob("*.wrap")):
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(wrap, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            missing.append({"name": wrap.stem, "directory": wrap.stem, "type": "unparsable", "url": ""})
            continue
        kind = next((s for s in ("wrap-git", "wrap-file", "wrap-hg", "wrap-svn") if cp.has_section(s)), None)
        if kind is None:  # wrap-redirect and friends: nothing of their own to fetch
            continue
        sec = cp[kind]
        directory = sec.get("directory", wrap.stem)
        d = sub / directory
        if d.is_dir() and any(d.iterdir()):
            continue
        if kind == "wrap-file":
            source_url = sec.get("source_url", "")
            cached = sec.get("source_filename")
            if not source_url or (cached and (sub / "packagecache" / cached).is_file()):
                continue
        url = sec.get("url") or sec.get("source_url") or ""
        missing.append({"name": wrap.stem, "directory": directory, "type": kind, "url": url})
    return missing
