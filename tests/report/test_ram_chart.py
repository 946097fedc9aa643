"""Pause versus guest RAM: series from results, the table, the SVG (escaped), the dashboard section."""

from __future__ import annotations

from pathlib import Path

from harness.live.result import ScenarioResult
from harness.report import ram_chart
from harness.report.render import render_run
from harness.store.runs import RunStore


def _result(mode: str, ram: int, pauses: list[float], tree: str = "t") -> ScenarioResult:
    r = ScenarioResult(f"{tree}-{ram}/p/{mode}/kvm", mode, "kvm", accel_used="kvm", verdict="pass")
    r.timings = {"guest_ram_mb": float(ram), "pause_ms": sorted(pauses)[len(pauses) // 2], "switch_s": 0.5}
    r.samples = [{"pause_ms": p, "migration_ms": 40.0 * ram / 256} for p in pauses]
    return r


def test_series_need_two_ram_sizes_and_skip_failures() -> None:
    results = [
        _result("cpr-transfer", 256, [2.0, 2.2, 1.9]),
        _result("cpr-transfer", 8192, [2.1, 2.3, 2.0]),
        _result("normal", 256, [2.0]),  # one size only: no series
    ]
    broken = _result("cpr-transfer", 1024, [99.0])
    broken.verdict = "fail"
    series = ram_chart.series_of([*results, broken])
    assert list(series) == ["cpr-transfer (kvm)"]
    assert [p.ram_mb for p in series["cpr-transfer (kvm)"]] == [256.0, 8192.0]
    rows = ram_chart.table_rows(series)
    assert (
        rows[1]["ram"] == "8 GiB"
        and rows[1]["pause"] == "2.1 (2.0–2.3, n=3)"
        and rows[1]["migration"] == "1280"
    )
    assert "| cpr-transfer (kvm) | 256 MiB |" in ram_chart.markdown(series)


def test_svg_is_escaped_and_the_dashboard_shows_it(tmp_path: Path) -> None:
    nasty = _result("cpr-exec", 256, [30.0, 31.0])
    nasty.scenario = "<script>x</script>"
    other = _result("cpr-exec", 4096, [32.0])
    other.scenario = nasty.scenario
    text = ram_chart.svg(ram_chart.series_of([nasty, other]))
    assert "<script>" not in text and "&lt;script&gt;" in text and text.startswith("<svg")
    store = RunStore(tmp_path / "run")
    for r in (_result("cpr-reboot", 256, [50.0, 52.0]), _result("cpr-reboot", 2048, [51.0, 55.0])):
        store.save_scenario(r)
    render_run(store.root)
    index = (store.root / "index.html").read_text()
    assert 'id="pause-vs-ram"' in index and "cpr-reboot (kvm)" in index and "<svg" in index
