"""Debian source packages: .dsc parsing and verification, apt against a fake engine, and the real mirror."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pytest
from sourcekit import T, make_tarball, quiet

from harness.build import debsrc
from harness.build.debsrc import APT_OPTS
from harness.build.sources import (
    SourceRecord,
    fetch_tree,
)
from harness.build.subprojects import missing_subprojects
from harness.engine.sandbox import fetch_user
from harness.errors import InfraError, SourceError

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
        from harness.engine.containers import RunResult

        self.engine.calls.append(argv)
        if argv[0] == "apt-cache" and "showsrc" in argv:
            return RunResult(0, SHOWSRC)
        if argv[0] == "apt-get" and "source" in argv:
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
        from harness.engine.containers import ImageRef

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
    assert eng.sessions[0]["network"] is True and eng.sessions[0]["user"] == fetch_user()
    assert not fetch_user().root  # never root, even with network
    assert eng.sessions[0]["mounts"][0].target == "/out"
    assert ["apt-get", *APT_OPTS, "source", "--download-only", "qemu=1:9.9.9+ds-1"] in eng.calls

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
    """The real engine and the harness's own trixie build image (no skip: a docker test fails loudly in
    CI when no engine answers, see conftest)."""
    from harness.engine.containers import Engine

    engine = Engine.connect(progress=quiet)
    return engine, engine.ensure_image("debian-trixie")


def _listed_versions(engine, image) -> list[str]:  # type: ignore[no-untyped-def]
    """What the mirror lists today (asked, never hard-coded: a live mirror moves on)."""
    with engine.session(image, network=True, user=fetch_user(), label="test apt-cache") as s:
        s.exec(["mkdir", "-p", "/tmp/apt/lists/partial", "/tmp/apt/cache/archives/partial"])
        s.exec(["apt-get", *APT_OPTS, "update"])
        return debsrc.available_versions(s, "qemu")


@pytest.fixture(scope="module")
def real_debian(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    engine, image = _engine_and_image()
    return engine, image, tmp_path_factory.mktemp("debcache")


@pytest.mark.docker
def test_debian_source_real(real_debian) -> None:  # type: ignore[no-untyped-def]
    """The default matrix's version, fetched for real (apt in a container without root or capabilities)."""
    from harness.config.matrix import load_matrix
    from harness.config.repo import DEFAULT_MATRIX

    engine, image, cache = real_debian
    version = load_matrix(DEFAULT_MATRIX).trees["upstream-10.2"].version
    assert version is not None
    tree = T(kind="debian-source", package="qemu", version=version)
    rec = fetch_tree("default", tree, cache, engine=engine, image=image, progress=quiet)
    dl = cache / "downloads" / "debian" / debsrc.cache_dirname("qemu", version)
    orig = dl / rec.provenance["orig"]
    assert rec.digest == "sha256:" + hashlib.sha256(orig.read_bytes()).hexdigest()
    assert rec.path is not None and (rec.path / "configure").is_file()
    assert not (rec.path / "debian").exists()
    assert any("deb" in m for m in rec.provenance["mirrors"])
    assert all(p.stat().st_uid == os.getuid() and not p.is_symlink() for p in dl.iterdir())
    again = fetch_tree("default", tree, cache, engine=None, progress=quiet)
    assert again.digest == rec.digest


@pytest.mark.docker
def test_debian_source_real_unknown_version_lists_what_the_mirror_has(real_debian) -> None:  # type: ignore[no-untyped-def]
    engine, image, cache = real_debian
    listed = _listed_versions(engine, image)
    assert listed, "the image's deb-src indexes list no qemu source at all"
    with pytest.raises(SourceError) as ei:
        fetch_tree("x", T(kind="debian-source", version="1:9.9.9-1"), cache, engine=engine, image=image)
    assert "1:9.9.9-1" in ei.value.message and ", ".join(listed) in ei.value.message
