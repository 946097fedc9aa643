"""Run folders (harness.store.runs): names, the latest link, storing and loading records."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from samples import CELL, full_result

from harness.live.vocab import Stage, Verdict
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore, new_run_id, update_latest

# --- names and ids ------------------------------------------------------------------------------------


def test_new_run_id_is_sortable_utc() -> None:
    when = datetime(2026, 11, 26, 14, 5, 1, tzinfo=timezone(timedelta(hours=1)))
    assert new_run_id(when) == "20261126T130501Z"
    assert new_run_id(datetime(2026, 11, 26, 13, 5, 2, tzinfo=UTC)) > new_run_id(when)
    assert len(new_run_id()) == 16 and new_run_id().endswith("Z")


def test_update_latest_points_at_newest_run(tmp_path: Path) -> None:
    (tmp_path / "20261126T130501Z").mkdir()
    (tmp_path / "20261126T140000Z").mkdir()
    link = update_latest(tmp_path, "20261126T130501Z")
    assert os.readlink(link) == "20261126T130501Z"
    update_latest(tmp_path, "20261126T140000Z")
    assert os.readlink(link) == "20261126T140000Z" and link.resolve() == tmp_path / "20261126T140000Z"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20261126T130501Z", "20261126T140000Z", "latest"]


def test_update_latest_refuses_to_replace_a_real_folder(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    with pytest.raises(FileExistsError, match="not a symlink"):
        update_latest(tmp_path, "20261126T130501Z")


# --- RunStore -----------------------------------------------------------------------------------------


def test_run_store_create_is_unique(tmp_path: Path) -> None:
    a = RunStore.create(tmp_path, "20261126T130501Z")
    b = RunStore.create(tmp_path, "20261126T130501Z")
    assert (a.run_id, b.run_id) == ("20261126T130501Z", "20261126T130501Z-2")
    assert a.results_dir == a.root / "results" and a.builds_dir == a.root / "builds"


def test_run_store_save_and_load(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    r1 = full_result()
    r2 = full_result("debian-11.1/default/boot/tcg", "pass")
    p = store.save_scenario(r1)
    store.save_scenario(r2)
    assert p == tmp_path / "run/results/debian-11.1__default__cpr-transfer__kvm/result.json"
    assert store.load_scenarios() == [r2, r1]  # sorted by cell id
    assert store.load_scenario(CELL) == r1


def test_run_store_truncated_result_loads_as_error(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    path = store.save_scenario(full_result())
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # the run was killed mid-write by something else
    [r] = store.load_scenarios()
    assert (r.cell_id, r.scenario, r.accel, r.verdict) == (CELL, "cpr-transfer", "kvm", "error")
    assert r.reason.startswith(
        "results/debian-11.1__default__cpr-transfer__kvm/result.json is truncated or corrupt: JSONDecodeError"
    )


def test_run_store_corrupt_and_missing_results(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.cell_dir("t/p/normal/tcg")  # created for logs, result never written
    (store.cell_dir("t/p/cpr-exec/tcg") / "result.json").write_text('{"verdict": "pass"}')  # no cell_id
    (store.cell_dir("t/p/cpr-reboot/tcg") / "result.json").write_bytes(b"\x00\x00\x00")
    weird = full_result("t/p/boot/tcg").to_json() | {"verdict": "weird"}
    (store.cell_dir("t/p/boot/tcg") / "result.json").write_text(json.dumps(weird))
    got = {r.cell_id: r for r in store.load_scenarios(expected_cells=["t/p/cpr-transfer/kvm"])}
    assert sorted(got) == [
        "t/p/boot/tcg",
        "t/p/cpr-exec/tcg",
        "t/p/cpr-reboot/tcg",
        "t/p/cpr-transfer/kvm",
        "t/p/normal/tcg",
    ]
    assert got.pop("t/p/cpr-transfer/kvm").verdict is Verdict.NOT_RUN  # planned, never started
    assert all(r.verdict is Verdict.ERROR for r in got.values())
    assert (
        got["t/p/normal/tcg"].reason
        == "no result: results/t__p__normal__tcg/result.json is missing (the run stopped early?)"
    )
    assert (
        "t__p__cpr-exec__tcg/result.json is truncated or corrupt: KeyError" in got["t/p/cpr-exec/tcg"].reason
    )
    assert "t__p__cpr-reboot__tcg/result.json is truncated or corrupt" in got["t/p/cpr-reboot/tcg"].reason
    assert got["t/p/boot/tcg"].reason.startswith("unknown verdict 'weird'")


def test_run_store_empty(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "nothing")
    assert store.load_scenarios() == []
    assert store.load_builds() == {}


def test_run_store_summary(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.save_scenario(full_result())
    store.save_scenario(full_result("t/p/boot/tcg", Verdict.PASS))
    path = store.write_summary(expected_cells=["t/p/normal/kvm"])
    assert path == tmp_path / "summary.json"
    assert json.loads(path.read_text()) == {CELL: "fail", "t/p/boot/tcg": "pass", "t/p/normal/kvm": "not-run"}


def test_run_store_builds(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    record = BuildRecord("debian-11.1/default", "debian-11.1", "prebuilt", "default", Verdict.PASS, None)
    record.binary = "/usr/bin/qemu-system-x86_64"
    path = store.save_build(record)
    assert path == tmp_path / "builds/debian-11.1__default/build.json"
    (store.builds_dir / "broken__default").mkdir()
    (store.builds_dir / "broken__default" / "build.json").write_text('{"cell_id": "bro')
    (store.builds_dir / "gone__default").mkdir()
    (store.builds_dir / "not_a_cell_folder").mkdir()  # not ours: ignored
    builds = store.load_builds()
    assert sorted(builds) == ["broken/default", "debian-11.1/default", "gone/default"]
    assert builds["debian-11.1/default"] == record
    assert builds["broken/default"].verdict is Verdict.ERROR
    assert (builds["broken/default"].error or "").startswith("builds/broken__default/build.json is truncated")
    assert builds["gone/default"].error == "builds/gone__default/build.json is missing"


def test_build_record_round_trip_keeps_unknown_keys() -> None:
    raw = {
        "cell": "t/p", "tree": "t", "kind": "git", "profile": "p", "verdict": "fail", "stage": "configure",
        "started_at": "2026-11-26T01:57:20+00:00", "durations": {"total_s": 5.6}, "cache_hit": False,
        "log_tail": ["ERROR: x"], "triage": {"stage": "configure", "cause": "c", "explanation": "e"},
        "from_a_later_release": {"x": 1},
    }  # fmt: skip
    record = BuildRecord.from_json(raw)
    assert record.stage is Stage.CONFIGURE and record.verdict is Verdict.FAIL and not record.infra
    assert record.triage is not None and record.triage.cause == "c"
    assert record.to_json()["from_a_later_release"] == {"x": 1}
    assert BuildRecord.from_json(record.to_json()) == record
    assert BuildRecord.from_json(raw | {"verdict": "error", "stage": "infra"}).infra
