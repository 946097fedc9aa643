"""Git trees: a mirror per URL, a checkout per commit, submodules, refs that move or do not exist."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from sourcekit import T, Upstream, git, quiet

from harness.build.sources import (
    fetch_tree,
)
from harness.errors import InfraError, SourceError


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


# --- option-like values and locks (issue 16) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ref"), [("--upload-pack=touch pwned host:repo", "main"), (None, "--output=pwned")]
)
def test_urls_and_refs_that_read_as_options_are_refused(
    upstream: Upstream, tmp_path: Path, url: str | None, ref: str
) -> None:
    with pytest.raises(SourceError, match="starts with '-'"):
        fetch_tree("g", T(kind="git", url=url or upstream.url, ref=ref), tmp_path / "c", progress=quiet)
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def test_a_lock_git_finds_taken_is_infra_not_the_trees_fault(upstream: Upstream, tmp_path: Path) -> None:
    """A git killed mid-fetch leaves ``<ref>.lock``: the next fetch of that ref is an infrastructure
    error naming the lock, not "the tree cannot be fetched"."""
    cache = tmp_path / "cache"
    fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=quiet)
    (mirror,) = (p for p in (cache / "git").iterdir() if p.is_dir())
    (ref_file,) = (mirror / "refs" / "cpr").iterdir()
    ref_file.with_name(ref_file.name + ".lock").write_text("")
    git(upstream.work, "commit", "-q", "--allow-empty", "-m", "three")  # main moves: the ref must update
    git(upstream.work, "push", "-q", upstream.url, "HEAD:main")
    with pytest.raises(InfraError) as info:
        fetch_tree("g", T(kind="git", url=upstream.url, ref="main"), cache, progress=quiet)
    assert "lock taken" in info.value.message and ".lock" in info.value.message


def test_a_mirror_another_run_holds_is_infra_after_the_wait(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.build import gitsrc
    from harness.engine.locks import file_lock

    cache = tmp_path / "cache"
    mirror = cache / "git" / hashlib.sha256(upstream.url.encode()).hexdigest()[:16]
    monkeypatch.setattr(gitsrc, "MIRROR_LOCK_TIMEOUT_S", 0.3)
    with file_lock(mirror.with_suffix(".lock")), pytest.raises(InfraError, match="stayed locked"):
        gitsrc.fetch("g", upstream.url, "main", cache, progress=quiet)
