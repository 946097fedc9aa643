"""Step timeline and QMP timeline of a cell page, on results written by real QEMU runs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import DATA

from harness.live.result import QmpRecord, ScenarioResult, Step
from harness.report.timeline import pause_window, qmp_rows, step_timeline

REAL = DATA / "runs" / "real-20261126T130929Z" / "results"


def _real(folder: str) -> ScenarioResult:
    return ScenarioResult.from_json(json.loads((REAL / folder / "result.json").read_text()))


def _xp_commands(r: ScenarioResult) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for q in r.qmp:
        line = (q.data.get("arguments") or {}).get("command-line", "")
        if q.kind == "command" and line.startswith("xp "):
            counts[(q.side, line)] = counts.get((q.side, line), 0) + 1
    return counts


def test_polling_is_folded_into_one_row_per_side_and_address() -> None:
    r = _real("upstream-10.2__lean__cpr-reboot__kvm")
    polls = _xp_commands(r)
    assert sum(polls.values()) >= 20  # KVM: the boot-marker loop reads many times
    rows = qmp_rows(r)
    folded = [row for row in rows if row["kind"] == "poll"]
    assert {(row["side"], row["name"]): len(row["reads"]) for row in folded} == polls
    for row in folded:
        reads = row["reads"]
        assert f"{len(reads)} read(s)" in row["data"]
        assert f"first {reads[0]['value']}" in row["data"] and f"last {reads[-1]['value']}" in row["data"]
        assert all(read["value"].startswith("0x") for read in reads)  # every reply paired with its read
    # every other message keeps its row; each read and its reply are gone into their fold
    assert len(rows) == len(r.qmp) - 2 * sum(polls.values()) + len(polls)
    assert [row["ms"] for row in rows] == sorted(row["ms"] for row in rows)


def test_counter_reads_show_first_and_last_value() -> None:
    r = _real("upstream-10.2__lean__cpr-reboot__kvm")
    counter = [row for row in qmp_rows(r) if row["kind"] == "poll" and row["name"] == "xp /1wx 0x100000"]
    assert {row["side"] for row in counter} == {"source", "destination"}
    source = next(row for row in counter if row["side"] == "source")
    assert int(source["reads"][-1]["value"], 16) > int(source["reads"][0]["value"], 16)  # the guest counted


def test_pause_window_matches_the_recorded_pause() -> None:
    for folder in ("upstream-10.2__lean__cpr-reboot__kvm", "upstream-10.2__lean__cpr-exec__tcg"):
        r = _real(folder)
        window = pause_window(r)
        assert window is not None, folder
        assert abs(window.ms - r.timings["pause_ms"]) < 0.01, folder
        migrate = next(s for s in r.steps if s.name == "migrate" and s.side == "source")
        assert window.stop >= migrate.started  # the guest stops after migrate was issued


def test_step_timeline_marks_the_pause_between_stop_and_resume() -> None:
    r = _real("upstream-10.2__lean__cpr-exec__tcg")
    timeline = step_timeline(r)
    rows = timeline["rows"]
    markers = [row["marker"] for row in rows if row["marker"]]
    assert markers == ["stop", "resume"]
    stop = next(i for i, row in enumerate(rows) if row["marker"] == "stop")
    resume = next(i for i, row in enumerate(rows) if row["marker"] == "resume")
    assert all(row["paused"] for row in rows[stop : resume + 1])
    assert not any(row["paused"] for row in rows[:stop] + rows[resume + 1 :])
    assert f"({timeline['window'].ms:.1f} ms)" in rows[resume]["name"]
    assert len(rows) == len(r.steps) + 2 and [row["ms"] for row in rows] == sorted(row["ms"] for row in rows)
    assert {row["side"] for row in rows} == {"harness", "source", "destination"}


def test_no_window_without_stop_or_anchor() -> None:
    r = ScenarioResult(
        "t/p/boot/tcg", "boot", "tcg", steps=[Step("start source QEMU", "source", 0.0, 0.1, True)]
    )
    assert pause_window(r) is None and step_timeline(r)["window"] is None
    r.qmp = [
        QmpRecord("source", 100.0, "event", "STOP", {}),
        QmpRecord("destination", 100.5, "event", "RESUME", {}),
    ]
    assert pause_window(r) is None  # no migrate command to put QMP times on the steps' clock
    r.steps.append(Step("migrate", "source", 1.0, 0.01, True))
    r.qmp.append(QmpRecord("source", 99.9, "command", "migrate", {}))
    window = pause_window(r)
    assert window is not None and round(window.stop, 6) == 1.1 and round(window.ms, 6) == 500.0


def test_unanswered_poll_and_error_reply() -> None:
    read = {"arguments": {"command-line": "xp /1wx 0x100000"}}
    r = ScenarioResult(
        "t/p/normal/tcg",
        "normal",
        "tcg",
        qmp=[
            QmpRecord("source", 1.0, "command", "human-monitor-command", read),
            QmpRecord("source", 1.05, "event", "MIGRATION", {"status": "active"}),  # between read and reply
            QmpRecord("source", 1.1, "error", "human-monitor-command", {"desc": "boom"}),
            QmpRecord("source", 2.0, "command", "human-monitor-command", read),
            QmpRecord("source", 2.1, "command", "query-status", {}),
        ],
    )
    rows = qmp_rows(r)
    assert [row["kind"] for row in rows] == ["poll", "event", "command"]
    assert [read["value"] for read in rows[0]["reads"]] == ["boom", "(no reply)"]


def test_rendered_cell_page_folds_and_marks(tmp_path: Path) -> None:
    import shutil

    from harness.report.render import render_run

    run = tmp_path / "real"
    shutil.copytree(DATA / "runs" / "real-20261126T130929Z", run)
    render_run(run)
    page = (run / "cells" / "upstream-10.2__lean__cpr-reboot__kvm.html").read_text()
    assert (
        page.count('<details class="poll">') == 3
    )  # boot marker and counter (source), counter (destination)
    assert 'data-marker="stop"' in page and 'data-marker="resume"' in page
    assert "guest resumed: destination RESUME" in page and '<tr class="paused' in page
    table = page[page.index('<table id="qmp"') :]
    table = table[: table.index("</table>")]
    assert table.count("xp /1wx 0x10000c") == 1  # folded: named once, not once per read
