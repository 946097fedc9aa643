"""What the dashboard lays out: grids that grow in rows (not columns), and build provenance in words."""

from __future__ import annotations

import json

from conftest import DATA

from harness.live.result import ScenarioResult
from harness.report.grid import chart, grids, row_of, variant_of
from harness.report.provenance import source_rows, subprojects_text
from harness.report.views import cell_view

REAL_BUILD = DATA / "runs" / "real-20261126T130929Z" / "builds" / "upstream-10.2__lean" / "build.json"


def test_subprojects_missing_in_words() -> None:
    record = json.loads(REAL_BUILD.read_text())
    missing = record["source"]["subprojects_missing"]
    text, lines = subprojects_text(missing, build_passed=True)
    crates = sum(1 for m in missing if m["name"].endswith("-rs"))
    assert crates >= 10
    assert (
        text
        == f"{crates} Rust crates, dtc, libblkio, slirp: not in the source tree, not needed by this profile"
    )
    assert len(lines) == len(missing) and all(
        m["name"] in line for m, line in zip(missing, lines, strict=True)
    )
    failed, _ = subprojects_text(missing, build_passed=False)
    assert failed.endswith(": not in the source tree")  # a failed build may have needed one
    assert subprojects_text([], build_passed=True)[0] == "none"


def test_source_rows_never_print_raw_json_for_known_shapes() -> None:
    source = json.loads(REAL_BUILD.read_text())["source"]
    rows = {row["key"]: row for row in source_rows(source, build_passed=True)}
    assert set(rows) == {k.replace("_", " ") for k in source}  # every key, in words
    files = rows["files"]
    assert files["text"] == "" and len(files["lines"]) == 2  # two files: shown line by line
    assert {line.split(": ")[0] for line in files["lines"]} == set(source["files"])
    assert rows["debian patches applied"]["text"] == "false"
    assert all("{" not in row["text"] for row in rows.values())
    odd = source_rows({"nested": {"a": [1, {"b": 2}]}}, build_passed=True)[0]
    assert odd["text"] == "1 entries" and '"b": 2' in "\n".join(odd["lines"])  # nothing is dropped


def _result(cell_id: str, verdict: str = "pass") -> ScenarioResult:
    return ScenarioResult.from_json({"cell_id": cell_id, "verdict": verdict})


def test_grid_per_build_row_extra_axes_become_rows() -> None:
    ids = [
        f"t/p/{s}/{a}" for s in ("cpr-exec", "normal", "boot") for a in ("kvm", "tcg")
    ] + [  # a machine profile and an option set, wherever they sit in the id
        "t/p/normal/virtio/tcg",
        "t/p/normal/virtio/mapped-ram/tcg",
        "t/p/ovmf/cpr-exec/kvm",
        "upgrade/a-to-b/normal/tcg",
        "u/q/normal/tcg",
    ]
    results = [_result(i) for i in ids]
    for r in results:  # what the runner records beside the id
        parts = r.cell_id.split("/")
        r.scenario = next(p for p in parts if p in ("boot", "normal", "cpr-exec"))
        r.accel = parts[-1]
    views = [cell_view(r, None) for r in results]
    out = grids(views, results)
    assert [g["row"] for g in out] == ["t/p", "u/q", "upgrade/a-to-b"]
    t = out[0]
    assert t["accels"] == ["tcg", "kvm"]  # columns: accelerators only, however many axes the ids have
    assert [g["scenario"] for g in t["groups"]] == ["boot", "normal", "cpr-exec"]
    normal = next(g for g in t["groups"] if g["scenario"] == "normal")
    assert [row["variant"] for row in normal["rows"]] == ["", "virtio", "virtio · mapped-ram"]
    assert normal["rows"][1]["cells"]["tcg"]["id"] == "t/p/normal/virtio/tcg"
    exec_rows = next(g for g in t["groups"] if g["scenario"] == "cpr-exec")["rows"]
    assert [row["variant"] for row in exec_rows] == ["", "ovmf"] and t["variants"]
    assert not out[1]["variants"] and out[1]["accels"] == ["tcg"]
    placed = [
        c["id"] for g in out for grp in g["groups"] for row in grp["rows"] for c in row["cells"].values()
    ]
    assert sorted(placed) == sorted(ids)  # every cell once
    assert (
        row_of("upgrade/a-to-b/normal/tcg") == "upgrade/a-to-b" and row_of("t/p/ovmf/cpr-exec/kvm") == "t/p"
    )
    assert variant_of(results[-3]) == "ovmf"


def test_chart_labels_are_as_wide_as_the_longest_id() -> None:
    long = "upgrade/debian-10.0-to-upstream-10.2/cpr-reboot/tcg"
    views = [
        {"id": long, "pause": 47.6, "verdict": "pass"},
        {"id": "t/p/normal/tcg", "pause": 1.0, "verdict": "pass"},
    ]
    c = chart(views)
    assert c["x0"] >= len(long) * 6.5  # 12px labels never clipped at the left edge
    assert c["width"] > c["x0"] + c["bar_w"]
