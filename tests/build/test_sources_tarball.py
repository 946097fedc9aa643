"""Tarball trees: download with retries, sha256 verification, safe extraction, disk full."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from sourcekit import FAST, QEMU_FILES, Server, T, closed_port, make_tarball, quiet

from harness.build import download
from harness.build.sources import (
    check_subprojects,
    fetch_tree,
)
from harness.errors import InfraError, SourceError

# ---------------------------------------------------------------------------------------------------
# tarball


def test_tarball_download_extract_and_cache_hit(server: Server, tmp_path: Path) -> None:
    sha = make_tarball(server.root / "qemu-9.9.9.tar.gz", QEMU_FILES)
    tree = T(kind="tarball", url=f"{server.base}/qemu-9.9.9.tar.gz", sha256=sha)
    cache = tmp_path / "cache"
    lines: list[str] = []
    rec = fetch_tree("up", tree, cache, progress=lines.append, retry=FAST)

    assert rec.kind == "tarball" and rec.tree_name == "up"
    assert rec.digest == f"sha256:{sha}"
    assert rec.path == cache / "trees" / sha[:16]
    assert (rec.path / "configure").read_bytes() == QEMU_FILES["configure"]
    assert os.access(rec.path / "configure", os.X_OK)
    assert (cache / "downloads" / sha / "qemu-9.9.9.tar.gz").is_file()
    assert rec.provenance["url"] == tree.url and rec.provenance["sha256"] == sha
    assert any("downloading qemu-9.9.9.tar.gz" in ln and "done" in ln for ln in lines)
    json.dumps(rec.provenance)  # JSON-able
    assert server.hits == {"/qemu-9.9.9.tar.gz": 1}
    assert not list((cache / "trees").glob(".tmp-*"))
    assert not list((cache / "downloads" / sha).glob("*.part"))

    again = fetch_tree("up", tree, cache, progress=quiet, retry=FAST)
    assert again.path == rec.path and again.digest == rec.digest
    assert server.hits == {"/qemu-9.9.9.tar.gz": 1}, "second fetch must not touch the server"


def test_tarball_subprojects_missing_listed(server: Server, tmp_path: Path) -> None:
    sha = make_tarball(server.root / "q.tar.gz", QEMU_FILES)
    rec = fetch_tree(
        "up", T(kind="tarball", url=f"{server.base}/q.tar.gz", sha256=sha), tmp_path, progress=quiet
    )
    missing = rec.provenance["subprojects_missing"]
    assert [m["name"] for m in missing] == ["dtc", "syn-2-rs"]
    assert missing[0] == {
        "name": "dtc",
        "directory": "dtc",
        "type": "wrap-git",
        "url": "https://example.invalid/dtc.git",
    }
    assert missing[1]["directory"] == "syn-2.0.104" and missing[1]["type"] == "wrap-file"
    check_subprojects(rec, ["keycodemapdb", "cached-rs"])  # vendored / in packagecache: fine
    with pytest.raises(SourceError) as ei:
        check_subprojects(rec, ["keycodemapdb", "dtc"])
    assert "dtc (https://example.invalid/dtc.git)" in ei.value.message
    assert "--enable-download" in (ei.value.hint or "")


def test_cached_tarball_reverified(server: Server, tmp_path: Path) -> None:
    sha = make_tarball(server.root / "q.tar.gz", {"configure": b"x"})
    tree = T(kind="tarball", url=f"{server.base}/q.tar.gz", sha256=sha)
    fetch_tree("up", tree, tmp_path, progress=quiet, retry=FAST)
    cached = tmp_path / "downloads" / sha / "q.tar.gz"
    cached.write_bytes(b"bit rot")
    lines: list[str] = []
    fetch_tree("up", tree, tmp_path, progress=lines.append, retry=FAST)
    assert server.hits["/q.tar.gz"] == 2
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    assert len(list((tmp_path / "downloads" / "rejected").iterdir())) == 1
    assert any("moved to" in ln for ln in lines)


def test_tarball_sha_mismatch(server: Server, tmp_path: Path) -> None:
    actual = make_tarball(server.root / "q.tar.gz", {"configure": b"x"})
    expected = "0" * 64
    url = f"{server.base}/q.tar.gz"
    with pytest.raises(SourceError) as ei:
        fetch_tree(
            "mytree", T(kind="tarball", url=url, sha256=expected), tmp_path, progress=quiet, retry=FAST
        )
    msg = str(ei.value)
    for part in ("tree mytree", url, expected, actual, "rejected"):
        assert part in msg
    rejected = list((tmp_path / "downloads" / "rejected").iterdir())
    assert len(rejected) == 1 and hashlib.sha256(rejected[0].read_bytes()).hexdigest() == actual
    assert not (tmp_path / "downloads" / expected / "q.tar.gz").exists()
    assert not list((tmp_path / "downloads" / expected).iterdir())
    assert not (tmp_path / "trees").exists()


def test_tarball_unreachable_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/q.tar.gz"
    lines: list[str] = []
    with pytest.raises(SourceError) as ei:
        fetch_tree(
            "up", T(kind="tarball", url=url, sha256="a" * 64), tmp_path, progress=lines.append, retry=FAST
        )
    assert url in ei.value.message and "3 attempts" in ei.value.message
    assert "ConnectionError" in ei.value.message
    assert sum("retrying" in ln for ln in lines) == 2


def test_tarball_retries_5xx_then_succeeds(server: Server, tmp_path: Path) -> None:
    sha = make_tarball(server.root / "q.tar.gz", {"configure": b"x"})
    server.fail_first["/q.tar.gz"] = 2
    rec = fetch_tree(
        "up",
        T(kind="tarball", url=f"{server.base}/q.tar.gz", sha256=sha),
        tmp_path,
        progress=quiet,
        retry=FAST,
    )
    assert (rec.path / "configure").is_file() and server.hits["/q.tar.gz"] == 3


def test_tarball_404_is_not_retried(server: Server, tmp_path: Path) -> None:
    url = f"{server.base}/nothere.tar.gz"
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch_tree("up", T(kind="tarball", url=url, sha256="a" * 64), tmp_path, progress=quiet, retry=FAST)
    assert server.hits == {"/nothere.tar.gz": 1}


def test_tarball_needs_valid_sha(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="64 hex"):
        fetch_tree("up", T(kind="tarball", url="http://x/q.tgz", sha256="abc"), tmp_path, progress=quiet)


def _evil_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"evil") -> str:
    with tarfile.open(path, "w") as tf:
        ok = tarfile.TarInfo("top/ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        if member.isreg():
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        else:
            tf.addfile(member)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _member(name: str, **kw: object) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(m, k, v)
    return m


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_member("top/../../evil"), "'..' component"),
        (_member("/tmp/abs-evil"), "absolute path"),
        (_member("top/link", type=tarfile.SYMTYPE, linkname="../../outside"), "outside the tree"),
        (_member("top/link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "outside the tree"),
        (_member("top/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    ],
)
def test_tarball_unsafe_members_refused(
    server: Server, tmp_path: Path, member: tarfile.TarInfo, why: str
) -> None:
    sha = _evil_tar(server.root / "evil.tar", member)
    cache = tmp_path / "cache"
    with pytest.raises(SourceError) as ei:
        fetch_tree("up", T(kind="tarball", url=f"{server.base}/evil.tar", sha256=sha), cache, progress=quiet)
    assert why in ei.value.message and member.name in ei.value.message
    assert not (tmp_path / "evil").exists() and not Path("/tmp/abs-evil").exists()
    assert not list((cache / "trees").iterdir()), "nothing may be left in trees/"


def test_extract_interrupted_leaves_no_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "q.tar.gz"
    make_tarball(archive, {"configure": b"x", "a": b"a"})
    target = tmp_path / "trees" / "abc"

    def boom(*a: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "extractall", boom)
    with pytest.raises(KeyboardInterrupt):
        download.extract_tarball(archive, target)
    assert not target.exists() and not list(target.parent.iterdir())
    monkeypatch.undo()
    assert (download.extract_tarball(archive, target) / "configure").is_file()


def test_extract_disk_full_is_infra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "q.tar.gz"
    make_tarball(archive, {"configure": b"x"})

    def full(*a: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(InfraError) as ei:
        download.extract_tarball(archive, tmp_path / "trees" / "abc", what="tree up")
    assert "disk full" in ei.value.message and str(tmp_path / "trees") in ei.value.message


def test_download_disk_full_is_infra(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = make_tarball(server.root / "q.tar.gz", {"configure": b"x"})

    real_open = Path.open

    class Full(io.RawIOBase):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(self: Path, mode: str = "r", *a: object, **kw: object):  # type: ignore[no-untyped-def]
        return Full() if mode == "wb" else real_open(self, mode, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", fake_open)
    with pytest.raises(InfraError, match="disk full while downloading"):
        download.download_verified(
            f"{server.base}/q.tar.gz", sha, tmp_path / "dl", policy=FAST, progress=quiet
        )


def test_extract_strips_only_a_single_top_dir(tmp_path: Path) -> None:
    archive = tmp_path / "flat.tar"
    with tarfile.open(archive, "w") as tf:
        for n in ("a", "b"):
            info = tarfile.TarInfo(n)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    target = download.extract_tarball(archive, tmp_path / "t")
    assert sorted(p.name for p in target.iterdir()) == ["a", "b"]
