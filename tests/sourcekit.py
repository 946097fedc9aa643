"""Helpers for the source tests: a stand-in tree, tarballs, a local HTTP server, git repositories."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.build.download import RetryPolicy

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


# ---------------------------------------------------------------------------------------------------
# the real QEMU 10.2.2 tree


@pytest.fixture(scope="session")
def qemu_10_2_tree(cache_dir: Path) -> Path:
    """The unpacked, unpatched QEMU 10.2.2 tree of the default matrix, obtained through the harness
    itself (``debian-source`` fetch into the shared cache: a cache hit once fetched). Needs the engine:
    tests that use it are ``docker`` tests, which fail loudly in CI when no engine answers."""
    from harness.build.sources import fetch_tree
    from harness.config.matrix import load_matrix
    from harness.config.repo import DEFAULT_MATRIX
    from harness.engine.containers import Engine

    tree = load_matrix(DEFAULT_MATRIX).trees["upstream-10.2"]
    engine = Engine.connect(progress=quiet)
    record = fetch_tree("upstream-10.2", tree, cache_dir, engine=engine, progress=quiet)
    assert record.path is not None and (record.path / "VERSION").read_text().strip() == "10.2.2"
    return record.path
