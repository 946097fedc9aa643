"""The offline subproject store: harvest fetched trees, fill exports by exact revision or closest version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_subprojects import new_tree, old_tree

from harness.build.sources import SourceRecord, content_digest
from harness.build.subproject_store import SubprojectStore, fill, prepare
from harness.errors import SourceError

REV = "f5772a62ec52591ff6870b7e8ef32482371f22c6"


def record(root: Path, name: str, kind: str = "tarball") -> SourceRecord:
    digest, _ = content_digest(root)
    return SourceRecord(name, kind, root, digest, {})


def test_harvest_keeps_present_folders_once_with_revision_and_version(tmp_path: Path) -> None:
    tree = new_tree(tmp_path / "t", with_folders=True)
    store = SubprojectStore(tmp_path / "cache")
    added = store.harvest(record(tree, "rel-10.2"), progress=lambda _: None)
    assert sorted(e.name for e in added) == ["berkeley-testfloat-3", "keycodemapdb"]
    entry = next(e for e in store.entries() if e.name == "keycodemapdb")
    assert entry.revision == REV and entry.qemu_version == "10.2.2" and entry.files == 1
    assert entry.digest == content_digest(tree / "subprojects" / "keycodemapdb")[0]
    assert (store.objects / entry.object_name / "meson.build").is_file()
    assert store.harvest(record(tree, "rel-10.2"), progress=lambda _: None) == []  # once per tree digest


def test_local_folders_are_never_harvested(tmp_path: Path) -> None:
    tree = new_tree(tmp_path / "t", with_folders=True)
    store = SubprojectStore(tmp_path / "cache")
    assert store.harvest(record(tree, "mine", kind="local")) == [] and store.entries() == []


def test_exact_revision_fill(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    SubprojectStore(cache).harvest(
        record(new_tree(tmp_path / "full", with_folders=True), "full"), lambda _: None
    )
    export = new_tree(tmp_path / "export", with_folders=False)
    src = record(export, "export", kind="local")
    with pytest.raises(SourceError, match=r"tree export lacks submodules: subprojects/berkeley-testfloat-3 "):
        prepare(src, None, cache, lambda _: None)
    filled = prepare(src, "store", cache, lambda _: None)
    assert filled.path is not None and filled.path != export
    assert (filled.path / "subprojects" / "keycodemapdb" / "meson.build").is_file()
    assert not (export / "subprojects" / "keycodemapdb").exists()  # the user's tree is never written
    rows = {f["path"]: f for f in filled.provenance["filled"]}
    assert (
        rows["subprojects/keycodemapdb"]["match"] == "exact"
        and rows["subprojects/keycodemapdb"]["revision"] == REV
    )
    assert filled.provenance["unfilled_digest"] == src.digest and filled.digest != src.digest
    again = prepare(record(export, "export", kind="local"), "store", cache, lambda _: None)
    assert again.digest == filled.digest and again.path == filled.path  # content-addressed


def test_substitute_is_the_closest_version_and_says_so(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    store = SubprojectStore(cache)
    for version in ("6.2.0", "7.2.0", "10.0.0"):
        tree = old_tree(tmp_path / version, with_folders=True)
        (tree / "VERSION").write_text(version + "\n")
        (tree / "ui" / "keycodemapdb" / "README").write_text(f"keycodemapdb of {version}\n")
        store.harvest(record(tree, f"q-{version}"), lambda _: None)
    export = old_tree(tmp_path / "export", with_folders=False)
    (export / "VERSION").write_text("7.1.0\n")
    filled = fill(record(export, "export", kind="local"), cache, lambda _: None)
    row = next(f for f in filled.provenance["filled"] if f["path"] == "ui/keycodemapdb")
    assert row["match"] == "substitute" and row["source_qemu_version"] == "7.2.0"
    assert "closest QEMU version" in row["why"] and "the build is the proof" in row["why"]
    assert filled.path is not None
    assert (filled.path / "ui" / "keycodemapdb" / "README").read_text() == "keycodemapdb of 7.2.0\n"


def test_a_pinned_revision_the_store_lacks_falls_back_to_a_marked_substitute(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    SubprojectStore(cache).harvest(
        record(new_tree(tmp_path / "full", with_folders=True), "full"), lambda _: None
    )
    export = new_tree(tmp_path / "export", with_folders=False, revision="0" * 40)
    filled = fill(record(export, "export", kind="local"), cache, lambda _: None)
    row = next(f for f in filled.provenance["filled"] if f["name"] == "keycodemapdb")
    assert row["match"] == "substitute" and row["wanted_revision"] == "0" * 40 and row["revision"] == REV
    assert "which the store lacks" in row["why"]


def test_nothing_in_the_store_names_exactly_the_folders_to_provide(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    export = old_tree(tmp_path / "export", with_folders=False)
    with pytest.raises(SourceError) as info:
        fill(record(export, "export", kind="local"), cache, lambda _: None)
    assert (
        "the subproject store has nothing for tests/fp/berkeley-softfloat-3 (.gitmodules), ui/keycodemapdb"
        in (info.value.message)
    )
    assert (
        "provide these folders in the tree (tests/fp/berkeley-softfloat-3, ui/keycodemapdb)"
        in info.value.message
    )
    assert "store add" in (info.value.hint or "")


def test_a_corrupt_index_or_missing_object_is_an_empty_store(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    store = SubprojectStore(cache)
    store.harvest(record(new_tree(tmp_path / "full", with_folders=True), "full"), lambda _: None)
    victim = store.entries()[0]
    shutil.rmtree(store.objects / victim.object_name)
    assert victim not in store.entries()
    store.index_path.write_text("{not json")
    assert store.entries() == []
    store.index_path.write_text(json.dumps({"entries": [{"name": "x"}]}))
    assert store.entries() == []
