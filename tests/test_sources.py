"""harness.sources (+ download, gitsrc, debsrc): real HTTP server, real git repos, real tarballs.

Fast tests need no Docker; the ``docker`` ones fetch a real Debian source package through the engine.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import debsrc, download
from harness.download import RetryPolicy
from harness.errors import InfraError, SourceError
from harness.sources import (
    SourceRecord,
    check_subprojects,
    content_digest,
    fetch_tree,
    missing_subprojects,
)

FAST = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=5, progress_interval_s=0)


@dataclass
class T:
    """Stand-in for harness.matrix.Tree (same field names)."""

    kind: str
    image: str = "debian-trixie"
    url: str | None = None
    sha256: str | None = None
    ref: str | None = None
    submodules: bool = True
    package: str | None = None
    version: str | None = None
    path: str | None = None
    binary: str | None = None


def quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------------
# helpers: tarballs and an HTTP server


def make_tarball(path: Path, files: dict[str, bytes], top: str = "qemu-9.9.9", mode: str = "w:gz") -> str:
    with tarfile.open(path, mode) as tf:
        d = tarfile.TarInfo(top)
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tf.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o755 if name == "configure" else 0o644
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


QEMU_FILES = {
    "configure": b"#!/bin/sh\necho configure\n",
    "VERSION": b"9.9.9\n",
    "subprojects/dtc.wrap": b"[wrap-git]\nurl = https://example.invalid/dtc.git\nrevision = abc\n",
    "subprojects/keycodemapdb.wrap": b"[wrap-git]\nurl = https://example.invalid/kc.git\n",
    "subprojects/keycodemapdb/README": b"vendored\n",
    "subprojects/syn-2-rs.wrap": (
        b"[wrap-file]\ndirectory = syn-2.0.104\nsource_url = https://example.invalid/syn\n"
        b"source_filename = syn.tar.gz\n#method = cargo\n"
    ),
    "subprojects/cached-rs.wrap": (
        b"[wrap-file]\ndirectory = cached-1\nsource_url = https://example.invalid/c\n"
        b"source_filename = c.tgz\n"
    ),
    "subprojects/packagecache/c.tgz": b"not really\n",
    "subprojects/local.wrap": b"[wrap-file]\ndirectory = local-1\n",
    "subprojects/redir.wrap": b"[wrap-redirect]\nfilename = foo/subprojects/bar.wrap\n",
}


@dataclass
class Server:
    root: Path
    base: str
    hits: dict[str, int] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> number of 503 answers first


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    state = Server(root=root, base="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self) -> None:  # noqa: N802
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            if state.fail_first.get(self.path, 0) > 0:
                state.fail_first[self.path] -= 1
                self.send_error(503, "try later")
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# ---------------------------------------------------------------------------------------------------
# git

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    res = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip()


@dataclass
class Upstream:
    url: str  # bare repo path
    work: Path
    sub_url: str
    first: str
    second: str


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Upstream:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    sub = tmp_path / "sub-work"
    sub.mkdir()
    git(sub, "init", "-q")
    (sub / "lib.c").write_text("int lib;\n")
    git(sub, "add", ".")
    git(sub, "commit", "-qm", "sub")
    git(tmp_path, "clone", "-q", "--bare", str(sub), "sub.git")

    work = tmp_path / "up-work"
    work.mkdir()
    git(work, "init", "-q")
    (work / "configure").write_text("#!/bin/sh\n")
    (work / "configure").chmod(0o755)
    git(work, "add", ".")
    git(work, "commit", "-qm", "one")
    git(work, "tag", "-a", "v1.0", "-m", "v1.0")
    first = git(work, "rev-parse", "HEAD")
    git(work, "submodule", "add", "-q", str(tmp_path / "sub.git"), "subprojects/libsub")
    (work / "VERSION").write_text("1.1\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "two")
    second = git(work, "rev-parse", "HEAD")
    git(tmp_path, "clone", "-q", "--bare", str(work), "up.git")
    return Upstream(
        url=str(tmp_path / "up.git"), work=work, sub_url=str(tmp_path / "sub.git"), first=first, second=second
    )


def test_git_branch_with_submodules(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rec = fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=quiet)
    assert rec.provenance["commit"] == upstream.second
    assert rec.path == cache / "trees" / f"git-{upstream.second[:16]}"
    assert (rec.path / "configure").is_file() and os.access(rec.path / "configure", os.X_OK)
    assert (rec.path / "subprojects" / "libsub" / "lib.c").read_text() == "int lib;\n"
    subs = rec.provenance["submodules"]
    assert list(subs) == ["subprojects/libsub"]
    manifest = f"git {upstream.second}\nsubmodule subprojects/libsub {subs['subprojects/libsub']}\n"
    assert rec.digest == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    assert rec.provenance["describe"].startswith("v1.0-1-g")
    assert rec.provenance["fetched"] is True
    json.dumps(rec.provenance)
    assert git(rec.path, "remote", "get-url", "origin") == upstream.url
    assert not list((cache / "trees").glob(".tmp-*"))

    # A relative local URL is resolved against base_dir (the matrix file's directory).
    rel = fetch_tree("g", T(kind="git", url="up.git", ref="main"), cache, base_dir=tmp_path, progress=quiet)
    assert rel.provenance["url"] == upstream.url and rel.digest == rec.digest


def test_git_tag_full_and_abbrev_sha(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    by_tag = fetch_tree("g", T(kind="git", url=upstream.url, ref="v1.0"), cache, progress=quiet)
    assert by_tag.provenance["commit"] == upstream.first
    assert by_tag.provenance["submodules"] == {}
    assert by_tag.digest == "sha256:" + hashlib.sha256(f"git {upstream.first}\n".encode()).hexdigest()
    by_abbrev = fetch_tree(
        "g", T(kind="git", url=upstream.url, ref=upstream.second[:10]), cache, progress=quiet
    )
    assert by_abbrev.provenance["commit"] == upstream.second

    # A full commit id already in the mirror needs no network at all.
    Path(upstream.url).rename(tmp_path / "gone.git")
    by_sha = fetch_tree("g", T(kind="git", url=upstream.url, ref=upstream.first), cache, progress=quiet)
    assert by_sha.path == by_tag.path and by_sha.provenance["fetched"] is False


def test_git_missing_ref(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as ei:
        fetch_tree("g", T(kind="git", url=upstream.url, ref="no-such-branch"), tmp_path, progress=quiet)
    assert "'no-such-branch'" in ei.value.message and upstream.url in ei.value.message
    assert "not found" in ei.value.message
    with pytest.raises(SourceError, match="not found"):
        fetch_tree("g", T(kind="git", url=upstream.url, ref="deadbeef" * 5), tmp_path, progress=quiet)


def test_git_unreachable_url(tmp_path: Path) -> None:
    url = str(tmp_path / "nowhere.git")
    with pytest.raises(SourceError) as ei:
        fetch_tree("g", T(kind="git", url=url, ref="main"), tmp_path / "c", progress=quiet)
    assert f"cannot fetch {url}" in ei.value.message


def test_git_no_submodules_and_moving_branch(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with_sub = fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=quiet)
    nosub = fetch_tree(
        "g", T(kind="git", url=upstream.url, ref="main", submodules=False), cache, progress=quiet
    )
    assert nosub.path is not None and nosub.path.name.endswith("-nosub")
    assert not any((nosub.path / "subprojects" / "libsub").iterdir())
    assert nosub.digest != with_sub.digest
    assert [m["name"] for m in nosub.provenance["subprojects_missing"]] == []  # a submodule, not a wrap

    # The branch moves upstream: the next fetch follows it.
    (upstream.work / "NEW").write_text("new\n")
    git(upstream.work, "add", ".")
    git(upstream.work, "commit", "-qm", "three")
    git(upstream.work, "push", "-q", upstream.url, "main")
    third = git(upstream.work, "rev-parse", "HEAD")
    moved = fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=quiet)
    assert moved.provenance["commit"] == third and (moved.path / "NEW").is_file()

    # Offline: the last fetched value is used, with a warning.
    Path(upstream.url).rename(tmp_path / "gone.git")
    lines: list[str] = []
    offline = fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=lines.append)
    assert offline.provenance["commit"] == third and offline.provenance["fetched"] is False
    assert any("WARNING" in ln and "cannot reach" in ln for ln in lines)


def test_git_submodule_failure_is_source_error(upstream: Upstream, tmp_path: Path) -> None:
    Path(upstream.sub_url).rename(tmp_path / "sub-gone.git")
    with pytest.raises(SourceError) as ei:
        fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), tmp_path / "c", progress=quiet)
    assert "submodules" in ei.value.message and "submodules: false" in (ei.value.hint or "")
    assert not list((tmp_path / "c" / "trees").iterdir())


# ---------------------------------------------------------------------------------------------------
# local


def test_local_dir_digest(tmp_path: Path) -> None:
    src = tmp_path / "qemu"
    (src / "sub").mkdir(parents=True)
    (src / "configure").write_text("#!/bin/sh\n")
    (src / "sub" / "a.c").write_text("int a;\n")
    (src / "build").mkdir()
    (src / "build" / "build.ninja").write_text("# ninja\n")
    rec = fetch_tree("l", T(kind="local", path="qemu"), tmp_path / "cache", base_dir=tmp_path)
    assert rec.path == src.resolve() and rec.provenance["git"] is None and rec.provenance["files"] == 2
    assert rec.digest.startswith("sha256:") and len(rec.digest) == 71
    assert not (tmp_path / "cache" / "trees").exists(), "local trees are not copied"

    (src / "build" / "foo.o").write_text("ignored build output")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest == rec.digest
    (src / "sub" / "a.c").write_text("int a = 1;\n")
    changed = fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest
    assert changed != rec.digest
    (src / "configure").chmod(0o755)
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest != changed


def test_local_git_describe_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "qemu"
    src.mkdir()
    git(src, "init", "-q")
    (src / ".gitignore").write_text("/build/\n")
    (src / "configure").write_text("#!/bin/sh\n")
    git(src, "add", ".")
    git(src, "commit", "-qm", "one")
    git(src, "tag", "-a", "v2.0", "-m", "v2.0")
    head = git(src, "rev-parse", "HEAD")
    clean = fetch_tree("l", T(kind="local", path=str(src)), tmp_path)
    assert clean.provenance["git"] == {"head": head, "describe": "v2.0", "dirty": False}

    (src / "build").mkdir()
    (src / "build" / "x.o").write_text("ignored")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest == clean.digest

    (src / "configure").write_text("#!/bin/sh\necho changed\n")
    dirty = fetch_tree("l", T(kind="local", path=str(src)), tmp_path)
    assert dirty.provenance["git"]["dirty"] is True and dirty.provenance["git"]["describe"] == "v2.0-dirty"
    assert dirty.digest != clean.digest
    (src / "new.c").write_text("untracked, not ignored\n")
    assert fetch_tree("l", T(kind="local", path=str(src)), tmp_path).digest != dirty.digest


def test_local_subdir_of_a_repo_is_plain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    git(tmp_path, "init", "-q")
    (tmp_path / "qemu").mkdir()
    (tmp_path / "qemu" / "configure").write_text("x")
    rec = fetch_tree("l", T(kind="local", path="qemu"), tmp_path / "c", base_dir=tmp_path)
    assert rec.provenance["git"] is None and rec.provenance["files"] == 1


def test_local_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as ei:
        fetch_tree("l", T(kind="local", path="nope"), tmp_path, base_dir=tmp_path)
    assert str(tmp_path / "nope") in ei.value.message and "tree l" in ei.value.message


def test_content_digest_symlink_and_format(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    (tmp_path / "l").symlink_to("f")
    digest, n = content_digest(tmp_path)
    h = hashlib.sha256(b"hello").hexdigest()
    lt = hashlib.sha256(b"f").hexdigest()
    manifest = f"f - {h} f\nl - {lt} l\n"
    assert n == 2 and digest == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# prebuilt


def test_prebuilt_record() -> None:
    from harness.containers import ImageRef

    tree = T(kind="prebuilt", image="qemu-trixie", binary="/usr/bin/qemu-system-x86_64")
    rec = fetch_tree("distro", tree, Path("/nonexistent"))
    assert rec.path is None and rec.kind == "prebuilt"
    assert rec.provenance == {
        "image": "qemu-trixie",
        "image_tag": None,
        "image_id": None,
        "binary": "/usr/bin/qemu-system-x86_64",
    }
    img = ImageRef(name="qemu-trixie", tag="cpr-harness/qemu-trixie:abc", id="sha256:" + "1" * 64)
    pinned = fetch_tree("distro", tree, Path("/nonexistent"), image=img)
    assert pinned.digest == img.id and pinned.provenance["image_tag"] == img.tag


# ---------------------------------------------------------------------------------------------------
# debian-source: .dsc parsing and verification, and the apt flow against a fake engine


def write_source_set(d: Path, version: str = "1:9.9.9+ds-1", tamper: bool = False) -> dict[str, str]:
    d.mkdir(parents=True, exist_ok=True)
    upstream = version.split(":")[-1].rsplit("-", 1)[0]
    orig = f"qemu_{upstream}.orig.tar.xz"
    deb = f"qemu_{version.split(':')[-1]}.debian.tar.xz"
    make_tarball(d / orig, {"configure": b"#!/bin/sh\n"}, top="qemu-9.9.9", mode="w:xz")
    make_tarball(d / deb, {"rules": b"patches!"}, top="debian", mode="w:xz")
    sums = {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in (orig, deb)}
    lines = "".join(f" {sums[n]} {(d / n).stat().st_size} {n}\n" for n in (orig, deb))
    dsc = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        f"Format: 3.0 (quilt)\nSource: qemu\nBinary: qemu-system,\n qemu-utils\nVersion: {version}\n"
        f"Checksums-Sha1:\n 0000000000000000000000000000000000000000 1 {orig}\n"
        f"Checksums-Sha256:\n{lines}Files:\n 00000000000000000000000000000000 1 {orig}\n"
        "\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
    )
    (d / debsrc.dsc_filename("qemu", version)).write_text(dsc)
    if tamper:
        with (d / orig).open("r+b") as f:
            f.seek(40)
            f.write(b"\xff\xff")
    return sums


def test_parse_dsc(tmp_path: Path) -> None:
    sums = write_source_set(tmp_path)
    dsc = debsrc.parse_dsc((tmp_path / "qemu_9.9.9+ds-1.dsc").read_text())
    assert dsc.source == "qemu" and dsc.version == "1:9.9.9+ds-1"
    assert {f.name: f.sha256 for f in dsc.files} == sums
    assert dsc.orig.name == "qemu_9.9.9+ds.orig.tar.xz"
    assert debsrc.verify_dir(tmp_path, "qemu", "1:9.9.9+ds-1").orig.sha256 == sums[dsc.orig.name]
    with pytest.raises(SourceError, match="Checksums-Sha256"):
        debsrc.parse_dsc("Source: q\nVersion: 1\n")
    with pytest.raises(SourceError, match="unsafe file name"):
        debsrc.parse_dsc(f"Source: q\nVersion: 1\nChecksums-Sha256:\n {'a' * 64} 1 ../x\n")


def test_verify_dir_detects_tampering(tmp_path: Path) -> None:
    sums = write_source_set(tmp_path, tamper=True)
    with pytest.raises(SourceError) as ei:
        debsrc.verify_dir(tmp_path, "qemu", "1:9.9.9+ds-1")
    msg = ei.value.message
    assert "sha256 mismatch for qemu_9.9.9+ds.orig.tar.xz" in msg and sums["qemu_9.9.9+ds.orig.tar.xz"] in msg
    (tmp_path / "qemu_9.9.9+ds-1.debian.tar.xz").unlink()
    write_source_set(tmp_path / "b")
    (tmp_path / "b" / "qemu_9.9.9+ds-1.debian.tar.xz").write_bytes(b"short")
    with pytest.raises(SourceError, match="has 5 bytes"):
        debsrc.verify_dir(tmp_path / "b", "qemu", "1:9.9.9+ds-1")
    with pytest.raises(SourceError, match="describes qemu=1:9.9.9"):
        (tmp_path / "b" / "qemu_9.9.9+ds-2.dsc").write_text(
            (tmp_path / "b" / "qemu_9.9.9+ds-1.dsc").read_text()
        )
        debsrc.verify_dir(tmp_path / "b", "qemu", "1:9.9.9+ds-2")


SHOWSRC = (
    "Package: qemu\nVersion: 1:9.9.9+ds-1\n"
    "Package: qemu\nVersion: 1:11.1.3+ds-1\n"
    "Package: other\nVersion: 5\n"
)
APT_404 = (
    "Err:1 http://deb.example/debian sid/main qemu 1:11.1.3+ds-1 (dsc)\n  404  Not Found\n"
    "E: Failed to fetch http://deb.example/pool/main/q/qemu/qemu_11.1.3%2bds-1.dsc  404  Not Found\n"
    "E: Failed to fetch http://deb.example/pool/main/q/qemu/qemu_11.1.3%2bds.orig.tar.xz  404  Not Found\n"
    "E: Failed to fetch some archives.\n"
)


class FakeSession:
    def __init__(self, engine: FakeEngine, out: Path) -> None:
        self.engine, self.out, self.id = engine, out, "fake"

    def exec(self, argv: list[str], *, workdir: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
        from harness.containers import RunResult

        self.engine.calls.append(argv)
        if argv[:2] == ["apt-cache", "showsrc"]:
            return RunResult(0, SHOWSRC)
        if "source" in argv:
            spec = argv[-1]
            if spec == "qemu=1:9.9.9+ds-1":
                write_source_set(self.out, tamper=self.engine.tamper)
                return RunResult(
                    0, "Get:1 http://deb.example/debian sid/main qemu 1:9.9.9+ds-1 (dsc) [1 kB]\n"
                )
            if spec == "qemu=1:11.1.3+ds-1":
                return RunResult(100, APT_404)
            return RunResult(100, f"E: Can not find version '{spec[5:]}' of package 'qemu'\n")
        return RunResult(0, "")


class FakeEngine:
    def __init__(self, tamper: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.sessions: list[dict] = []
        self.tamper = tamper

    def ensure_image(self, name: str):  # type: ignore[no-untyped-def]
        from harness.containers import ImageRef

        return ImageRef(name=name, tag=f"fake/{name}", id="sha256:" + "2" * 64)

    @contextlib.contextmanager
    def session(self, image, *, mounts=(), network=False, user=None, **kw):  # type: ignore[no-untyped-def]
        self.sessions.append({"image": image, "mounts": mounts, "network": network, "user": user})
        assert ":" not in str(mounts[0].source), "a colon in a bind source breaks Docker's volume syntax"
        yield FakeSession(self, mounts[0].source)


def test_debian_source_fake_engine_and_cache(tmp_path: Path) -> None:
    eng = FakeEngine()
    tree = T(kind="debian-source", package="qemu", version="1:9.9.9+ds-1")
    rec = fetch_tree("deb", tree, tmp_path, engine=eng, progress=quiet)  # type: ignore[arg-type]
    dl = tmp_path / "downloads" / "debian" / "qemu_1%3a9.9.9+ds-1"
    orig_sha = hashlib.sha256((dl / "qemu_9.9.9+ds.orig.tar.xz").read_bytes()).hexdigest()
    assert rec.digest == f"sha256:{orig_sha}" and rec.path == tmp_path / "trees" / orig_sha[:16]
    assert (rec.path / "configure").is_file() and not (rec.path / "debian").exists()
    assert rec.provenance["orig"] == "qemu_9.9.9+ds.orig.tar.xz"
    assert rec.provenance["debian_patches_applied"] is False
    assert rec.provenance["mirrors"] == ["http://deb.example/debian"]
    assert set(rec.provenance["files"]) == {"qemu_9.9.9+ds.orig.tar.xz", "qemu_9.9.9+ds-1.debian.tar.xz"}
    json.dumps(rec.provenance)
    assert eng.sessions[0]["network"] is True and eng.sessions[0]["user"] == "0:0"
    assert eng.sessions[0]["mounts"][0].target == "/out"
    assert ["apt-get", "source", "--download-only", "qemu=1:9.9.9+ds-1"] in eng.calls

    again = fetch_tree("deb", tree, tmp_path, engine=None, progress=quiet)
    assert again.digest == rec.digest and again.provenance == rec.provenance


def test_debian_source_unknown_version_lists_available(tmp_path: Path) -> None:
    tree = T(kind="debian-source", version="1:1.0-1")
    with pytest.raises(SourceError) as ei:
        fetch_tree("deb", tree, tmp_path, engine=FakeEngine(), progress=quiet)  # type: ignore[arg-type]
    assert "qemu=1:1.0-1" in ei.value.message
    assert (
        "1:9.9.9+ds-1, 1:11.1.3+ds-1" in ei.value.message and "5" not in ei.value.message.split("lists:")[1]
    )
    assert not list((tmp_path / "downloads" / "debian").iterdir()), "no temp dir left behind"


def test_debian_source_404(tmp_path: Path) -> None:
    tree = T(kind="debian-source", version="1:11.1.3+ds-1")
    with pytest.raises(SourceError) as ei:
        fetch_tree("deb", tree, tmp_path, engine=FakeEngine(), progress=quiet)  # type: ignore[arg-type]
    msg = ei.value.message
    assert "files are missing (HTTP 404)" in msg and "qemu_11.1.3%2bds.orig.tar.xz" in msg
    assert "1:9.9.9+ds-1" in (ei.value.hint or "")


def test_debian_source_tampered_download_rejected(tmp_path: Path) -> None:
    tree = T(kind="debian-source", version="1:9.9.9+ds-1")
    with pytest.raises(SourceError) as ei:
        fetch_tree("deb", tree, tmp_path, engine=FakeEngine(tamper=True), progress=quiet)  # type: ignore[arg-type]
    assert "sha256 mismatch" in ei.value.message and "set aside" in ei.value.message
    assert not (tmp_path / "downloads" / "debian" / "qemu_1%3a9.9.9+ds-1").exists()
    assert len(list((tmp_path / "downloads" / "rejected").iterdir())) == 1


def test_debian_source_cache_tampered_refetches(tmp_path: Path) -> None:
    tree = T(kind="debian-source", version="1:9.9.9+ds-1")
    eng = FakeEngine()
    fetch_tree("deb", tree, tmp_path, engine=eng, progress=quiet)  # type: ignore[arg-type]
    dl = tmp_path / "downloads" / "debian" / "qemu_1%3a9.9.9+ds-1"
    (dl / "qemu_9.9.9+ds-1.debian.tar.xz").write_bytes(b"changed")
    with pytest.raises(InfraError, match="needs a container engine"):
        fetch_tree("deb", tree, tmp_path, engine=None, progress=quiet)
    fetch_tree("deb", tree, tmp_path, engine=eng, progress=quiet)  # type: ignore[arg-type]
    assert len(eng.sessions) == 2
    debsrc.verify_dir(dl, "qemu", "1:9.9.9+ds-1")


def test_record_type() -> None:
    rec = SourceRecord(
        tree_name="x", kind="local", path=Path("/x"), digest="sha256:" + "0" * 64, provenance={}
    )
    assert rec.path == Path("/x")
    assert missing_subprojects(Path("/nonexistent")) == []


# ---------------------------------------------------------------------------------------------------
# debian-source for real (Docker)


def _engine_and_image():  # type: ignore[no-untyped-def]
    from harness.containers import Engine, ImageRef

    try:
        engine = Engine.connect(progress=quiet)
    except InfraError as exc:
        pytest.skip(f"no container engine: {exc.message}")
    try:
        img = engine.client.images.get("cpr-dev/debian-trixie")
        return engine, ImageRef(name="debian-trixie", tag="cpr-dev/debian-trixie", id=img.id)
    except Exception:
        return engine, engine.ensure_image("debian-trixie")


@pytest.fixture(scope="module")
def real_debian(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    engine, image = _engine_and_image()
    return engine, image, tmp_path_factory.mktemp("debcache")


@pytest.mark.docker
def test_debian_source_real(real_debian) -> None:  # type: ignore[no-untyped-def]
    engine, image, cache = real_debian
    tree = T(kind="debian-source", package="qemu", version="1:10.0.13+ds-0+deb13u1")
    rec = fetch_tree("trixie", tree, cache, engine=engine, image=image, progress=quiet)
    dl = cache / "downloads" / "debian" / "qemu_1%3a10.0.13+ds-0+deb13u1"
    orig = dl / "qemu_10.0.13+ds.orig.tar.xz"
    assert rec.digest == "sha256:" + hashlib.sha256(orig.read_bytes()).hexdigest()
    assert rec.path is not None and (rec.path / "configure").is_file()
    assert (rec.path / "VERSION").read_text().strip() == "10.0.13"
    assert not (rec.path / "debian").exists()
    assert any("deb" in m for m in rec.provenance["mirrors"])
    assert os.stat(orig).st_uid == os.getuid()
    again = fetch_tree("trixie", tree, cache, engine=None, progress=quiet)
    assert again.digest == rec.digest


@pytest.mark.docker
def test_debian_source_real_unknown_and_404(real_debian) -> None:  # type: ignore[no-untyped-def]
    engine, image, cache = real_debian
    with pytest.raises(SourceError) as ei:
        fetch_tree("x", T(kind="debian-source", version="1:9.9.9-1"), cache, engine=engine, image=image)
    assert "1:10.2.2+ds-1" in ei.value.message and "1:10.0.13+ds-0+deb13u1" in ei.value.message
    with pytest.raises(SourceError) as ei:
        fetch_tree("x", T(kind="debian-source", version="1:11.1.3+ds-1"), cache, engine=engine, image=image)
    assert "HTTP 404" in ei.value.message
