"""The dashboard in a real browser: Debian's chromium, headless (``.ci/run`` installs it).

Opens index.html from disk, checks the grid's cells and verdicts in the rendered DOM, follows a grid link
to a cell page, and proves that a ``<script>`` planted in a QEMU log does not run (a control page shows
the same script does run when it is not escaped) and stays visible as text. At a laptop's 1366x768 no page
overflows horizontally (measured in the laid-out page over the DevTools protocol, see ``browserkit``), and
the screenshots in docs/ are taken here: ``CPR_DOCS_SCREENSHOTS=1 pytest tests/report/test_report_browser.py``
writes them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from browserkit import Browser
from conftest import DATA, REPO

from harness.live.result import ScenarioResult
from harness.report.render import render_run
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

CHROMIUM = Path("/usr/bin/chromium")
RUNS = DATA / "runs"
CURRENT = "20261126T020000Z"
PLANTED_CELL = "debian-10.0/prebuilt/normal/tcg"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=2000",
]

VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source", "track", "embed"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(  # in CI (.ci/run installs it) a missing browser must fail loudly, not skip
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="needs Debian's chromium (/usr/bin/chromium)",
    ),
]


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.text: list[str] = []
        self.cells: dict[str, tuple[str, str]] = {}  # data-cell -> (data-verdict, href)
        self.ids: set[str] = set()
        self.scripts = 0
        self._stack: list[str] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag not in VOID:
            self._stack.append(tag)
        self.ids.add(a.get("id", ""))
        self.scripts += tag == "script"
        if tag == "td" and a.get("data-cell"):
            self._cell = a["data-cell"]
            self.cells[self._cell] = (a.get("data-verdict", ""), "")
        if tag == "a" and self._cell and a.get("href"):
            self.cells[self._cell] = (self.cells[self._cell][0], a["href"])
            self._cell = None

    def handle_endtag(self, tag: str) -> None:
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._stack[-2:] == ["head", "title"]:  # not the <title> of SVG shapes
            self.title += data
        if not self._stack or self._stack[-1] != "style":
            self.text.append(data)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # fresh profile per launch
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _dom(tmp_path: Path, url: str) -> _Dom:
    dom = _Dom()
    dom.feed(_chromium(tmp_path, "--dump-dom", url).stdout)
    return dom


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    shutil.copytree(RUNS, reports, dirs_exist_ok=True)  # the previous night too: history badges
    run = reports / CURRENT
    render_run(run, expected_cells=["upstream-10.2/lean/cpr-exec/kvm"])
    return run


def test_grid_cells_and_verdicts_in_the_browser(run_dir: Path, tmp_path: Path) -> None:
    dom = _dom(tmp_path, (run_dir / "index.html").as_uri())
    assert dom.title == f"cpr-harness run {CURRENT}"
    expected = {
        "upstream-10.2/lean/normal/tcg": "pass",
        "upstream-10.2/lean/cpr-transfer/tcg": "fail",
        "debian-10.0/prebuilt/cpr-exec/tcg": "unsupported",
        PLANTED_CELL: "error",
        "upstream-10.2/lean/cpr-exec/kvm": "not-run",
    }
    for cell, verdict in expected.items():
        assert dom.cells[cell][0] == verdict, cell
    text = " ".join(dom.text)
    assert "✘ fail" in text and "⊘ unsupported" in text and "regression (was pass)" in text
    assert "regression(s) since run 20261125T020000Z" in text


def test_follow_link_to_cell_page_and_planted_script_stays_text(run_dir: Path, tmp_path: Path) -> None:
    index = (run_dir / "index.html").as_uri()
    href = _dom(tmp_path, index).cells[PLANTED_CELL][1]
    cell_url = urljoin(index, href)
    assert Path(cell_url.removeprefix("file://")).is_file()
    dom = _dom(tmp_path, cell_url)
    assert dom.title.startswith(PLANTED_CELL)  # the planted script would have set it to PWNED
    assert "pwned" not in dom.ids and dom.scripts == 0
    text = "".join(dom.text)
    assert "<script>document.title='PWNED'" in text  # shown, as text, to the maintainer
    assert "Segmentation fault" in text and "CPRGUEST BOOT" in text


def test_control_the_planted_script_would_run_unescaped(tmp_path: Path) -> None:
    """Proves the check above can fail: the same payload, not escaped, does change the DOM here."""
    log = (RUNS / CURRENT / "results" / PLANTED_CELL.replace("/", "__") / "serial.log").read_text()
    payload = next(line for line in log.splitlines() if "<script>" in line)
    page = tmp_path / "control.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>control</title></head><body><pre>{payload}</pre></body></html>"
    )
    dom = _dom(tmp_path, page.as_uri())
    assert dom.title == "PWNED" and "pwned" in dom.ids


NIGHTLY = DATA / "nightly"
RED_CELL = "upgrade__debian-10.0-to-upstream-10.2__cpr-transfer__tcg"
LAPTOP = (1366, 768)
DOCS = REPO / "docs"
SHOTS = {"report-dashboard.png": "index.html", "report-cell-fail.png": f"cells/{RED_CELL}.html"}


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five stored nights, each rendered in turn; the last one's folder."""
    reports = tmp_path_factory.mktemp("nightly")
    shutil.copytree(NIGHTLY, reports, dirs_exist_ok=True)
    nights = sorted(p for p in reports.iterdir() if p.is_dir())
    for night in nights:
        render_run(night)
    return nights[-1]


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A matrix far wider than today's: long tree names, machine profiles and option sets in the ids."""
    store = RunStore(tmp_path_factory.mktemp("wide") / "20261207T020000Z")
    scenarios = ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
    for tree in (
        "openeuler-qemu-6.2-with-a-long-branch-name/lean",
        "upstream-master-nightly/debug-sanitizers",
    ):
        store.save_build(BuildRecord.from_json({"cell": tree, "verdict": "pass"}))
        for s in scenarios:
            for extra in ("", "/virtio", "/virtio/mapped-ram", "/ovmf/multifd-4-channels"):
                for accel in ("tcg", "kvm"):
                    cell = f"{tree}/{s}{extra}/{accel}"
                    r = ScenarioResult(cell, s, accel, verdict="fail" if "multifd" in extra else "pass")
                    r.timings = {"total_s": 2.0, "pause_ms": 1.5}
                    r.reason = "x" * 300 if r.verdict == "fail" else ""
                    store.save_scenario(r)
    render_run(store.root)
    return store.root


def _overflow(tmp_path: Path, page: Path) -> dict[str, object]:
    with Browser(tmp_path / f"profile-{page.stem}") as browser:
        browser.open(page.as_uri(), *LAPTOP)
        return browser.overflow()


@pytest.mark.parametrize(
    "which",
    ["nightly:index.html", f"nightly:cells/{RED_CELL}.html", "stored:index.html", "wide:index.html"],
)
def test_no_horizontal_overflow_at_laptop_width(
    which: str, nightly: Path, run_dir: Path, wide: Path, tmp_path: Path
) -> None:
    folder, page = which.split(":")
    root = {"nightly": nightly, "stored": run_dir, "wide": wide}[folder]
    pages = [root / page]
    if folder == "wide":  # and one of its cell pages, with a long reason
        pages.append(next((root / "cells").glob("*multifd*")))
    for path in pages:
        m = _overflow(tmp_path, path)
        assert m["body_scroll"] <= m["body_client"] and m["doc_scroll"] <= m["doc_client"], (path.name, m)
        assert m["over"] == [], (path.name, m)


def test_overflow_measure_can_fail(tmp_path: Path) -> None:
    """Control: a page with one element wider than the viewport is caught by the same measurement."""
    page = tmp_path / "wide.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>w</title></head><body><table><tr><td>"
        + "unbreakable" * 300
        + "</td></tr></table></body></html>"
    )
    m = _overflow(tmp_path, page)
    assert m["doc_scroll"] > m["doc_client"] and any(str(o).startswith("td") for o in m["over"])  # type: ignore[union-attr]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_screenshots_of_the_dashboard_and_a_failing_cell(nightly: Path, tmp_path: Path) -> None:
    """Full-page screenshots at laptop width; CPR_DOCS_SCREENSHOTS=1 writes them into docs/."""
    update = os.environ.get("CPR_DOCS_SCREENSHOTS") == "1"
    for name, page in SHOTS.items():
        shot = tmp_path / name
        with Browser(tmp_path / f"profile-{name}") as browser:
            browser.open((nightly / page).as_uri(), *LAPTOP)
            data = browser.screenshot(shot, full_page=True, max_height=2400)
        width, height = _png_size(data)
        assert width == LAPTOP[0] and height >= LAPTOP[1] and len(data) > 50_000, name  # content, not blank
        if update:
            shutil.copy(shot, DOCS / name)
        committed = DOCS / name
        assert committed.is_file(), f"{committed} missing: run with CPR_DOCS_SCREENSHOTS=1"
        assert _png_size(committed.read_bytes())[0] == LAPTOP[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert all(f"docs/{name}" in readme for name in SHOTS)
