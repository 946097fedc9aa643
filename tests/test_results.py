"""Unit tests of harness.results: JSON round trips, the atomic writer and the run folder layout."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness import results
from harness.results import (
    Check,
    QmpRecord,
    RunStore,
    ScenarioResult,
    Step,
    cell_dir_name,
    cell_id_from_dir,
    new_run_id,
    update_latest,
    write_json_atomic,
    write_text_atomic,
)

CELL = "debian-11.1/default/cpr-transfer/kvm"


def full_result(cell_id: str = CELL, verdict: str = "fail") -> ScenarioResult:
    return ScenarioResult(
        cell_id=cell_id,
        scenario="cpr-transfer",
        accel="kvm",
        accel_used="kvm",
        verdict=verdict,
        reason="device-tree: destination has extra dev: ide-hd (drive ide0-hd0)",
        checks=[
            Check("runstates", "pass", "source: running → … → postmigrate", "source: running → postmigrate"),
            Check(
                "device-tree", "fail", "identical", "extra dev: ide-hd", '--- a\n+++ b\n+  dev: ide-hd, id ""'
            ),
            Check("state-file-size", "skip", "-", "only for cpr-reboot (mode cpr-transfer)"),
        ],
        steps=[
            Step("start-source", "source", 0.0, 0.41, True),
            Step("migrate", "source", 2.5, 0.012, True, "channels: main+cpr"),
            Step("migrate-incoming", "destination", 2.52, 0.003, False, "timeout"),
        ],
        qmp=[
            QmpRecord("source", 1795000002.5, "command", "migrate", {"channels": [{"channel-type": "main"}]}),
            QmpRecord("source", 1795000002.501, "event", "STOP", {}),
            QmpRecord("destination", 1795000002.503, "event", "RESUME", {}),
            QmpRecord(
                "destination", 1795000002.6, "error", "cont", {"class": "GenericError", "desc": "ünïcode"}
            ),
        ],
        timings={"total_s": 7.25, "pause_ms": 2.5, "downtime_ms": 2.0},
        qemu_version={"source": "11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)", "destination": "11.1.3"},
        logs={"serial": "serial.log", "stderr-src": "stderr-src.log"},
        reproduce="python -m harness run --cell debian-11.1/default/cpr-transfer/kvm",
        started_at="2026-11-26T13:05:01+00:00",
        finished_at="2026-11-26T13:05:08+00:00",
    )


# --- dataclasses and JSON -----------------------------------------------------------------------------


def test_scenario_result_round_trip_through_json_text() -> None:
    r = full_result()
    text = json.dumps(r.to_json())
    back = ScenarioResult.from_json(json.loads(text))
    assert back == r
    assert back.to_json() == r.to_json()


def test_from_json_tolerates_missing_optional_keys() -> None:
    r = ScenarioResult.from_json({"cell_id": CELL, "verdict": "pass"})
    assert (r.scenario, r.accel, r.verdict) == ("cpr-transfer", "kvm", "pass")
    assert r.checks == [] and r.qmp == [] and r.timings == {} and r.logs == {} and r.reproduce == ""
    check = Check.from_json({"name": "boot-marker"})
    assert check == Check("boot-marker", "fail", "", "", "")
    step = Step.from_json({"name": "quit"})
    assert (step.side, step.ok, step.detail) == ("", False, "")
    assert QmpRecord.from_json({"name": "STOP", "kind": "event"}).data == {}


def test_from_json_ignores_unknown_keys_and_null_timings() -> None:
    d = full_result().to_json()
    d["schema_extra"] = 1
    d["timings"]["pause_ms"] = None
    r = ScenarioResult.from_json(d)
    assert "pause_ms" not in r.timings and r.timings["total_s"] == 7.25


def test_from_json_rejects_non_results() -> None:
    with pytest.raises(KeyError):
        ScenarioResult.from_json({"verdict": "pass"})
    with pytest.raises(ValueError):
        ScenarioResult.from_json({"cell_id": CELL, "checks": "all good"})
    with pytest.raises(ValueError):
        ScenarioResult.from_json([1, 2])  # type: ignore[arg-type]


def test_error_result_derives_scenario_and_accel() -> None:
    r = ScenarioResult.error("upgrade/10.0-to-11.1/cpr-exec/tcg", "boom")
    assert (r.scenario, r.accel, r.verdict, r.reason) == ("cpr-exec", "tcg", "error", "boom")
    assert ScenarioResult.error("odd", "x").scenario == ""


# --- atomic writers -----------------------------------------------------------------------------------


def test_write_json_atomic_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "result.json"
    write_json_atomic(path, {"a": 1, "s": "ünï"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1, "s": "ünï"}
    assert path.read_text(encoding="utf-8").endswith("}\n")
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]  # no temporary left


def test_write_json_atomic_keeps_old_content_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "result.json"
    write_json_atomic(path, {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})  # not serialisable: fails before touching the file

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_text_atomic(path, "new content")  # fails after writing the temporary file
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_write_text_atomic_uses_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.json"
    seen: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((os.path.dirname(src), os.path.basename(src)))
        assert os.path.exists(src) and not os.path.exists(dst)
        real_replace(src, dst)

    monkeypatch.setattr(results.os, "replace", spy)
    write_text_atomic(path, "x\n")
    assert seen and seen[0][0] == str(tmp_path) and seen[0][1].startswith(".summary.json.")
    assert path.read_text() == "x\n"


# --- names and ids ------------------------------------------------------------------------------------


def test_cell_dir_name_and_back() -> None:
    assert cell_dir_name("a/b/c/d") == "a__b__c__d"
    assert cell_dir_name(CELL) == "debian-11.1__default__cpr-transfer__kvm"
    assert cell_id_from_dir(cell_dir_name(CELL)) == CELL
    for bad in ("", "a//b", "../x/y/z", "a/./b", "a/b\\c"):
        with pytest.raises(ValueError):
            cell_dir_name(bad)


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
    store.save_scenario(ScenarioResult("t/p/boot/tcg", "boot", "tcg", verdict="weird"))
    got = {r.cell_id: r for r in store.load_scenarios(expected_cells=["t/p/cpr-transfer/kvm"])}
    assert sorted(got) == [
        "t/p/boot/tcg",
        "t/p/cpr-exec/tcg",
        "t/p/cpr-reboot/tcg",
        "t/p/cpr-transfer/kvm",
        "t/p/normal/tcg",
    ]
    assert all(r.verdict == "error" for r in got.values())
    assert (
        got["t/p/normal/tcg"].reason
        == "no result: results/t__p__normal__tcg/result.json is missing (the run stopped early?)"
    )
    assert "results/t__p__cpr-transfer__kvm/result.json is missing" in got["t/p/cpr-transfer/kvm"].reason
    assert (
        "t__p__cpr-exec__tcg/result.json is truncated or corrupt: KeyError" in got["t/p/cpr-exec/tcg"].reason
    )
    assert "t__p__cpr-reboot__tcg/result.json is truncated or corrupt" in got["t/p/cpr-reboot/tcg"].reason
    assert got["t/p/boot/tcg"].reason == "unknown verdict 'weird' in results/t__p__boot__tcg/result.json"


def test_run_store_empty(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "nothing")
    assert store.load_scenarios() == []
    assert store.load_builds() == {}


def test_run_store_summary(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.save_scenario(full_result())
    store.save_scenario(full_result("t/p/boot/tcg", "pass"))
    path = store.write_summary(expected_cells=["t/p/normal/kvm"])
    assert path == tmp_path / "summary.json"
    assert json.loads(path.read_text()) == {CELL: "fail", "t/p/boot/tcg": "pass", "t/p/normal/kvm": "error"}


def test_run_store_builds(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    record = {"cell_id": "debian-11.1/default", "status": "ok", "binary": "build/qemu-system-x86_64"}
    path = store.save_build("debian-11.1/default", record)
    assert path == tmp_path / "builds/debian-11.1__default/build.json"
    (store.builds_dir / "broken__default").mkdir()
    (store.builds_dir / "broken__default" / "build.json").write_text('{"cell_id": "bro')
    (store.builds_dir / "gone__default").mkdir()
    builds = store.load_builds()
    assert builds["debian-11.1/default"] == record
    assert builds["broken/default"]["error"].startswith("builds/broken__default/build.json is truncated")
    assert builds["gone/default"] == {"error": "builds/gone__default/build.json is missing"}
