"""The scenario result model, the vocabulary (cell ids) and the atomic writers (harness.live)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from samples import CELL, full_result

from harness.live import files
from harness.live.files import write_json_atomic, write_text_atomic
from harness.live.result import Check, QmpRecord, ScenarioResult, Step
from harness.live.vocab import CellId

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

    monkeypatch.setattr(files.os, "fsync", disk_full)
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

    monkeypatch.setattr(files.os, "replace", spy)
    write_text_atomic(path, "x\n")
    assert seen and seen[0][0] == str(tmp_path) and seen[0][1].startswith(".summary.json.")
    assert path.read_text() == "x\n"


# --- cell ids and their folders -----------------------------------------------------------------------


def test_cell_folder_names_are_readable_and_round_trip() -> None:
    assert CellId("a/b/c/d").folder() == "a__b__c__d"
    assert CellId(CELL).folder() == "debian-11.1__default__cpr-transfer__kvm"
    assert CellId.from_folder(CellId(CELL).folder()) == CELL
    for bad in ("", "a//b", "../x/y/z", "a/./b", "a/b\\c", "a/\0/b"):
        with pytest.raises(ValueError):
            CellId(bad)


def test_cell_folder_mapping_is_injective() -> None:
    # Before: tree "a__b"/profile "c" and tree "a"/profile "b__c" shared the folder a__b__c (issue 16).
    ids = ["a__b/c", "a/b__c", "a_/_b/c", "a/_/_b/c", "a%5Fb/c", "a_b/c", "a%/b", "a/%b", "x/y"]
    folders = [CellId(i).folder() for i in ids]
    assert len(set(folders)) == len(ids), folders
    for i, f in zip(ids, folders, strict=True):
        assert CellId.from_folder(f) == i
        assert "/" not in f and f not in (".", "..")
    for not_ours in ("a_b", "a___b", "%zz", "a%5"):
        with pytest.raises(ValueError):
            CellId.from_folder(not_ours)
