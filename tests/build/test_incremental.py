"""Starting a build from an earlier build's directory: mtimes that tell ninja the truth, and the refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.build import incremental
from harness.build.incremental import Changes, Seed
from harness.engine.sandbox import build_user
from harness.live.vocab import Verdict
from harness.store.build_record import BuildRecord, ImageInfo

OLD = 1_600_000_000  # seconds: an mtime long before "now"


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (OLD, OLD))
    return root


def test_unchanged_files_take_the_old_tree_mtimes_changed_ones_now(tmp_path: Path) -> None:
    before = tree(tmp_path / "a", {"a.c": "1", "b.c": "2", "inc/x.h": "x", "gone.c": "g", ".git/HEAD": "ref"})
    after = tree(
        tmp_path / "b", {"a.c": "1", "b.c": "2 changed", "inc/x.h": "x", "new.c": "n", ".git/HEAD": "other"}
    )
    os.utime(before / "a.c", (OLD - 50, OLD - 50))
    now = OLD + 1000.5
    changes = incremental.sync_mtimes(before, after, now=now)
    assert changes.changed == ["b.c"] and changes.added == ["new.c"] and changes.removed == ["gone.c"]
    assert os.stat(after / "a.c").st_mtime == OLD - 50  # the old tree's time: nothing to rebuild
    assert os.stat(after / "inc/x.h").st_mtime == OLD
    assert os.stat(after / "b.c").st_mtime == now and os.stat(after / "new.c").st_mtime == now
    assert os.stat(after / ".git/HEAD").st_mtime == OLD  # .git is not source: untouched
    assert changes.count == 3


def test_mode_and_symlink_changes_count_as_changes(tmp_path: Path) -> None:
    before = tree(tmp_path / "a", {"run.sh": "x", "t.c": "t"})
    after = tree(tmp_path / "b", {"run.sh": "x", "t.c": "t"})
    (after / "run.sh").chmod(0o755)
    os.symlink("t.c", before / "link")
    os.symlink("run.sh", after / "link")
    changes = incremental.sync_mtimes(before, after)
    assert changes.changed == ["link", "run.sh"]
    assert os.lstat(after / "link").st_mtime > OLD and os.stat(after / "t.c").st_mtime == OLD


def test_configure_inputs_make_configure_run_again() -> None:
    assert Changes(changed=["util/cutils.c", "include/qemu/osdep.h"]).configure_inputs() == []
    changed = Changes(changed=["configure", "python/scripts/mkvenv.py", "hw/core/loader.c"])
    assert changed.configure_inputs() == ["configure", "python/scripts/mkvenv.py"]
    assert Changes(added=["subprojects/dtc.wrap"]).configure_inputs() == ["subprojects/dtc.wrap"]


def test_a_new_header_named_like_another_is_not_seeded(tmp_path: Path) -> None:
    before = tree(tmp_path / "a", {"include/qemu/osdep.h": "x", "hw/a.c": "a"})
    after = tree(
        tmp_path / "b", {"include/qemu/osdep.h": "x", "hw/a.c": "a", "hw/osdep.h": "shadow", "hw/new.h": "n"}
    )
    changes = incremental.sync_mtimes(before, after)
    assert changes.shadowing_headers() == ["hw/osdep.h"]


def _seed(tmp_path: Path, **over: object) -> Seed:
    home = tmp_path / "builds" / "seedkey"
    (home / "obj").mkdir(parents=True)
    (home / "obj" / "build.ninja").write_text("rule x\n")
    src = tmp_path / "seed-src"
    src.mkdir(exist_ok=True)
    fields = {
        "key": "seedkey" * 4, "home": home, "source_dir": src, "image_id": "sha256:img",
        "configure": ("--a",), "targets": ("t",), "domain": "image-x",
    }  # fmt: skip
    fields.update(over)
    return Seed(**fields)  # type: ignore[arg-type]


@pytest.mark.skipif(os.geteuid() != 0 and build_user().uid != os.getuid(), reason="needs to own the folder")
def test_refusals(tmp_path: Path) -> None:
    seed = _seed(tmp_path)
    os.chown(seed.obj, build_user().uid, -1) if os.geteuid() == 0 else None
    obj = tmp_path / "builds" / "new" / "obj"
    ok = {"image_id": "sha256:img", "configure": ["--a"], "targets": ["t"], "domain": "image-x", "obj": obj}
    assert incremental.refusal(seed, **ok) == ""  # type: ignore[arg-type]
    assert "image" in incremental.refusal(seed, **{**ok, "image_id": "sha256:other"})  # type: ignore[arg-type]
    assert "profile" in incremental.refusal(seed, **{**ok, "configure": ["--b"]})  # type: ignore[arg-type]
    assert "profile" in incremental.refusal(seed, **{**ok, "targets": []})  # type: ignore[arg-type]
    assert "trust domain" in incremental.refusal(seed, **{**ok, "domain": "local-t"})  # type: ignore[arg-type]
    assert "same build" in incremental.refusal(seed, **{**ok, "obj": seed.obj})  # type: ignore[arg-type]
    obj.mkdir(parents=True)
    (obj / "build.ninja").write_text("")
    assert "interrupted" in incremental.refusal(seed, **ok)  # type: ignore[arg-type]
    shutil.rmtree(obj)
    (seed.obj / "build.ninja").unlink()
    assert "no build.ninja" in incremental.refusal(seed, **ok)  # type: ignore[arg-type]
    shutil.rmtree(seed.obj)
    assert "gone" in incremental.refusal(seed, **ok)  # type: ignore[arg-type]


def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    seed = _seed(tmp_path)
    if os.geteuid() == 0:
        os.chown(seed.obj, build_user().uid + 1, -1)
    elif build_user().uid == os.getuid():
        pytest.skip("the build user is this user")
    obj = tmp_path / "builds" / "new" / "obj"
    why = incremental.refusal(
        seed, image_id="sha256:img", configure=["--a"], targets=["t"], domain="image-x", obj=obj
    )
    assert "not a folder of the build user" in why


def test_a_seed_comes_only_from_a_passed_build_with_a_home(tmp_path: Path) -> None:
    record = BuildRecord(cell="t/p", tree="t", kind="git", profile="p", verdict=Verdict.PASS)
    assert Seed.of(record, "image-x") is None  # no key, no log, no image
    record.key, record.log, record.source_dir = "k" * 64, str(tmp_path / "builds/k/build.log"), str(tmp_path)
    record.image, record.configure, record.targets = ImageInfo("i", "t", "sha256:i"), ["--a"], ["t"]
    seed = Seed.of(record, "image-x", label="abc")
    assert seed is not None and seed.obj == tmp_path / "builds/k/obj" and seed.label == "abc"
    record.verdict = Verdict.FAIL
    assert Seed.of(record, "image-x") is None
