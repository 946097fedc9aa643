"""The dashboard in a real browser: Debian's chromium, headless (``.ci/run`` installs it).

Opens index.html from disk, screenshots it, checks the grid's cells and verdicts in the rendered DOM,
follows a grid link to a cell page, and proves that a ``<script>`` planted in a QEMU log does not run
(a control page shows the same script does run when it is not escaped) and stays visible as text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
from conftest import DATA, REPO

from harness.report.render import render_run

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


def test_screenshot(run_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "index.png"
    _chromium(tmp_path, "--window-size=1400,2200", f"--screenshot={shot}", (run_dir / "index.html").as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with content, not blank
    keep = REPO / "tests" / ".artifacts"
    if keep.is_dir():  # opt-in: `mkdir tests/.artifacts` to look at the screenshot
        shutil.copy(shot, keep / "index.png")


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
