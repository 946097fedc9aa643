"""HTML report, JSON outputs, console summary and shard merge, rendered from stored runs in tests/data/runs.

The stored runs were made by hand from the result model (a real run's results may be added beside them):
``20261125T020000Z`` is the previous night, ``20261126T020000Z`` the current one. Assertions name the cells
they care about and tolerate extra cells.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import DATA

from harness.errors import ConfigError
from harness.live.result import ScenarioResult
from harness.report.merge import merge_runs
from harness.report.render import render_run
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

RUNS = DATA / "runs"
PREVIOUS, CURRENT = "20261125T020000Z", "20261126T020000Z"
NOT_RUN = "upstream-10.2/lean/cpr-exec/kvm"
EXPECTED = {
    "upstream-10.2/lean/normal/tcg": "pass",
    "upstream-10.2/lean/cpr-transfer/tcg": "fail",
    "upstream-10.2/lean/cpr-exec/tcg": "pass",
    "debian-10.0/prebuilt/cpr-exec/tcg": "unsupported",
    "debian-10.0/prebuilt/normal/tcg": "error",
    "debian-10.0/prebuilt/cpr-transfer/tcg": "error",  # truncated result.json
    "broken-git/lean/boot/tcg": "error",
    NOT_RUN: "not-run",
}


class _Cells(HTMLParser):
    """Collects ``data-cell`` -> ``data-verdict`` and every ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self.hrefs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "td" and a.get("data-cell"):
            self.cells[str(a["data-cell"])] = str(a.get("data-verdict"))
        if a.get("href"):
            self.hrefs.append(str(a["href"]))


def parse(path: Path) -> _Cells:
    p = _Cells()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def copy_runs(tmp_path: Path) -> Path:
    """The stored runs in a scratch reports folder, with a fake build cache for log/reproduce.sh."""
    reports = tmp_path / "reports"
    shutil.copytree(RUNS, reports)
    for cell, key in (("upstream-10.2__lean", "3f2a"), ("broken-git__lean", "9a9a")):
        home = tmp_path / "cache" / "builds" / key
        home.mkdir(parents=True)
        (home / "build.log").write_text(f"$ /src/configure ...\nbuild log of {cell} <script>x()</script>\n")
        (home / "reproduce.sh").write_text("#!/bin/sh\nexec docker run --rm ...\n")
        record_path = reports / CURRENT / "builds" / cell / "build.json"
        record = json.loads(record_path.read_text())
        record["log"] = str(home / "build.log")
        record_path.write_text(json.dumps(record))
    return reports


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return copy_runs(tmp_path)


@pytest.fixture
def rendered(reports: Path):
    return render_run(reports / CURRENT, expected_cells=[NOT_RUN])


def test_writes_every_output(rendered) -> None:
    run = rendered.run_dir
    for name in ("index.html", "junit.xml", "results.json", "summary.json"):
        assert (run / name).is_file(), name
    results = RunStore(run).load_scenarios()
    assert len(rendered.cell_pages) == len(results) + 1  # + the expected cell that never ran
    assert all(p.is_file() and p.parent == run / "cells" for p in rendered.cell_pages)
    assert not rendered.ok


def test_grid_holds_cells_with_verdicts_and_links(rendered) -> None:
    page = parse(rendered.index)
    for cell, verdict in EXPECTED.items():
        assert page.cells.get(cell) == verdict, cell
        assert f"cells/{cell.replace('/', '__')}.html" in page.hrefs
    html = rendered.index.read_text()
    for text in ("✔ pass", "✘ fail", "⊘ unsupported", "⚠ error", "○ not run"):  # icon and text
        assert text in html
    assert "pause 61.5 ms" in html and "ran on tcg" in html


def test_totals_and_regressions_on_top(rendered) -> None:
    html = rendered.index.read_text()
    assert rendered.totals["fail"] >= 1 and rendered.totals["not-run"] == 1
    assert html.index('id="regressions"') < html.index('id="grid"')
    start = html.index('id="regressions"')
    regressions = html[start : html.index("</div>", start)]
    assert "upstream-10.2/lean/cpr-transfer/tcg" in regressions and "build broken-git/lean" in regressions
    assert "upstream-10.2/lean/cpr-exec/tcg" not in regressions  # a fix, listed elsewhere


def test_planted_script_is_escaped_everywhere(rendered) -> None:
    for page in [rendered.index, *rendered.cell_pages]:
        assert parse(page).scripts == 0, page
        assert "<script>document.title" not in page.read_text()
    cell = (rendered.run_dir / "cells" / "debian-10.0__prebuilt__normal__tcg.html").read_text()
    assert cell.count("&lt;script&gt;document.title=") >= 4  # reason, step, QMP data, serial, stderr
    assert "Content-Security-Policy" in cell
    assert "\x1b" not in cell and "red" in cell  # terminal colours removed from the serial excerpt


def test_cell_page_shows_checks_diff_steps_qmp_logs_reproduce(rendered) -> None:
    html = (rendered.run_dir / "cells" / "upstream-10.2__lean__cpr-transfer__tcg.html").read_text()
    assert "destination has extra dev: ide-hd id &#34;disk1&#34;" in html
    assert '<span class="add">+          dev: ide-hd, id &#34;disk1&#34;</span>' in html
    assert '<span class="file">--- source (before)</span>' in html
    assert "migrate-incoming" in html and "1492.0" in html  # QMP STOP 1.492 s after the first message
    assert "1500 ms" in html  # step "migrate" starts at 1.5 s
    assert (
        "CPRGUEST BOOT 5e1f" in html
        and "../results/upstream-10.2__lean__cpr-transfer__tcg/serial.log" in html
    )
    assert (
        "python -m harness test --matrix matrices/nightly.yaml --cells upstream-10.2/lean/cpr-transfer/tcg"
        in html
    )


def test_truncated_and_not_run_cells(rendered) -> None:
    cells = rendered.run_dir / "cells"
    truncated = (cells / "debian-10.0__prebuilt__cpr-transfer__tcg.html").read_text()
    assert "truncated or corrupt" in truncated
    assert "never started" in (cells / "upstream-10.2__lean__cpr-exec__kvm.html").read_text()


def test_build_panels_copy_log_and_reproduce(rendered) -> None:
    run = rendered.run_dir
    for cell in ("upstream-10.2__lean", "broken-git__lean"):
        assert (run / "builds" / cell / "build.log").is_file()
        assert (run / "builds" / cell / "reproduce.sh").is_file()
    html = rendered.index.read_text()
    assert 'href="builds/broken-git__lean/reproduce.sh"' in html
    panel = html[html.index('data-build="broken-git/lean"') :]
    panel = panel[: panel.index('</details>\n<details class="panel"')]
    for text in (
        "failed at stage",
        "configure",
        "unknown-configure-option",
        "Remove --enable-nonexistent",
        "ERROR: meson setup failed",
        "&lt;script&gt;alert(1)",
        "0123456789abcdef",
    ):
        assert text in panel, text
    assert "0001-skip-blobs.patch" in html and "applied" in html and "cc (Debian 14.2.0-19)" in html
    # failing builds come first
    assert html.index('data-build="broken-git/lean"') < html.index('data-build="debian-10.0/prebuilt"')


def test_rerender_keeps_copied_build_files(reports: Path, tmp_path: Path) -> None:
    render_run(reports / CURRENT)
    shutil.rmtree(tmp_path / "cache")  # the cache is gone (CI artifact on another machine)
    summary = render_run(reports / CURRENT)
    assert 'href="builds/upstream-10.2__lean/build.log"' in summary.index.read_text()


def test_results_and_summary_json(rendered) -> None:
    data = json.loads(rendered.results_json.read_text())
    summary = json.loads(rendered.summary_json.read_text())
    assert {s["cell_id"]: s["verdict"] for s in data["scenarios"]} == summary
    for cell, verdict in EXPECTED.items():
        assert summary[cell] == verdict
    assert data["builds"]["broken-git/lean"]["stage"] == "configure"
    assert data["history"]["baseline"] == PREVIOUS
    assert data["totals"] == rendered.totals


def test_console_summary_lists_regressions_first(rendered) -> None:
    lines = rendered.console.splitlines()
    assert lines[0].startswith(f"since {PREVIOUS}:") and "regression" in lines[0]
    first_total = next(i for i, ln in enumerate(lines) if ln.startswith("scenarios:"))
    regressions = [i for i, ln in enumerate(lines) if "REGRESSION" in ln]
    assert regressions and max(regressions) < first_total
    assert any("upstream-10.2/lean/cpr-transfer/tcg: pass -> fail" in ln for ln in lines)
    assert any(ln.startswith("fixed:") and "upstream-10.2/lean/cpr-exec/tcg" in ln for ln in lines)


def test_first_run_has_no_history(reports: Path) -> None:
    summary = render_run(reports / PREVIOUS)
    assert summary.history is None
    assert "No earlier run" in summary.index.read_text()


def test_explicit_baseline_must_be_a_run(reports: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        render_run(reports / CURRENT, baseline=tmp_path / "nowhere")


def test_missing_and_escaping_log_paths(reports: Path) -> None:
    store = RunStore(reports / CURRENT)
    r = store.load_scenario("upstream-10.2/lean/normal/tcg")
    r.logs = {"serial": "serial.log", "evil": "../../../../../../etc/passwd", "gone": "gone.log"}
    store.save_scenario(r)
    render_run(store.root)
    html = (store.root / "cells" / "upstream-10.2__lean__normal__tcg.html").read_text()
    assert "root:x:0:0" not in html
    assert "(gone.log is missing)" in html and "CPRGUEST BOOT" in html


def test_long_log_is_excerpted(reports: Path) -> None:
    store = RunStore(reports / CURRENT)
    r = store.load_scenario("upstream-10.2/lean/normal/tcg")
    (store.cell_dir(r.cell_id) / "serial.log").write_text("".join(f"line {i}\n" for i in range(5000)))
    render_run(store.root)
    html = (store.root / "cells" / "upstream-10.2__lean__normal__tcg.html").read_text()
    assert (
        "line 0\n" in html and "line 4999" in html and "lines omitted" in html and "line 2500\n" not in html
    )


def test_empty_run_folder_renders(tmp_path: Path) -> None:
    summary = render_run(tmp_path / "20260101T000000Z")
    assert summary.ok and "No scenario cells" in summary.index.read_text()
    assert json.loads(summary.summary_json.read_text()) == {}


def test_ok_when_everything_passed(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.save_scenario(ScenarioResult("t/p/boot/tcg", "boot", "tcg", verdict="pass"))
    store.save_scenario(ScenarioResult("t/p/cpr-exec/tcg", "cpr-exec", "tcg", verdict="unsupported"))
    store.save_build(BuildRecord.from_json({"cell": "t/p", "verdict": "pass"}))
    assert render_run(store.root).ok


def test_merge_shards_then_render(reports: Path, tmp_path: Path) -> None:
    whole = reports / CURRENT
    shards = [tmp_path / "shard-a", tmp_path / "shard-b"]
    for shard in shards:
        shutil.copytree(whole / "builds", shard / "builds")
    for i, cell in enumerate(sorted((whole / "results").iterdir())):
        shutil.copytree(cell, shards[i % 2] / "results" / cell.name)
    merged = merge_runs(shards, tmp_path / "merged")
    assert merged.builds == 3 and any("broken-git/lean" in n for n in merged.notes)
    summary = render_run(tmp_path / "merged", baseline=reports / PREVIOUS)
    original = render_run(whole)
    assert json.loads(summary.summary_json.read_text()) == json.loads(original.summary_json.read_text())
    assert summary.history is not None and summary.history.baseline == PREVIOUS
    with pytest.raises(ConfigError):
        merge_runs([tmp_path / "nothing-here"], tmp_path / "merged2")


def test_real_run_renders_with_drill_down(tmp_path: Path) -> None:
    """Results written by real QEMU runs (not by hand) render into the grid and cell pages."""
    run = tmp_path / "real"
    shutil.copytree(RUNS / "real-20261126T130929Z", run)
    summary = render_run(run)
    cells = parse(summary.index).cells
    assert cells["upstream-10.2/lean/cpr-exec/tcg"] == "pass"
    assert cells["upgrade/debian-10.0-to-upstream-10.2/cpr-exec/tcg"] == "unsupported"
    assert cells["upgrade/debian-10.0-to-upstream-10.2/cpr-transfer/tcg"] == "fail"
    page = (run / "cells" / "upstream-10.2__lean__cpr-exec__tcg.html").read_text(encoding="utf-8")
    assert "migrate-incoming" in page and "CPRGUEST" in page and "python" in page
    failed = (run / "cells" / "upgrade__debian-10.0-to-upstream-10.2__cpr-transfer__tcg.html").read_text()
    assert "sriov-pf" in failed
    unsupported = (run / "cells" / "upgrade__debian-10.0-to-upstream-10.2__cpr-exec__tcg.html").read_text()
    assert "does not accept value" in unsupported and "cpr-exec" in unsupported
