"""JUnit XML: one testcase per scenario and build cell, validated by junitparser and the stdlib parser."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import DATA

from harness.live.result import Check, ScenarioResult
from harness.report.junit import classname, junit_xml, write_junit
from harness.report.render import render_run
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

RUNS = DATA / "runs"
CURRENT = "20261126T020000Z"


@pytest.fixture
def junit_file(tmp_path: Path) -> Path:
    shutil.copytree(RUNS / CURRENT, tmp_path / CURRENT)
    return render_run(tmp_path / CURRENT, expected_cells=["upstream-10.2/lean/cpr-exec/kvm"]).junit


def _cases(path: Path) -> dict[tuple[str, str, str], ET.Element]:
    root = ET.parse(path).getroot()
    return {
        (suite.get("name", ""), case.get("classname", ""), case.get("name", "")): case
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
    }


def test_junitparser_reads_it(junit_file: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromfile(str(junit_file))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"builds", "scenarios"}
    store = RunStore(junit_file.parent)
    assert suites["scenarios"].tests == len(store.load_scenarios()) + 1
    assert suites["builds"].tests == len(store.load_builds())
    cases = {(c.classname, c.name): c for c in suites["scenarios"]}
    fail = cases[("upstream-10_2.lean", "cpr-transfer/tcg")]
    assert [type(r).__name__ for r in fail.result] == ["Failure"]
    assert fail.result[0].message == 'device-tree: destination has extra dev: ide-hd id "disk1"'
    assert "+          dev: ide-hd" in fail.result[0].text
    assert [type(r).__name__ for r in cases[("debian-10_0.prebuilt", "cpr-exec/tcg")].result] == ["Skipped"]
    assert [type(r).__name__ for r in cases[("debian-10_0.prebuilt", "normal/tcg")].result] == ["Error"]
    not_run = cases[("upstream-10_2.lean", "cpr-exec/kvm")].result  # planned, never run: an error, not a skip
    assert [type(r).__name__ for r in not_run] == ["Error"] and not_run[0].message.startswith("not run:")
    assert cases[("upstream-10_2.lean", "normal/tcg")].is_passed
    build = {c.classname: c for c in suites["builds"]}["broken-git.lean"]
    assert "stage configure" in build.result[0].message
    assert "unknown-configure-option" in build.result[0].message


def test_counts_and_escaping(junit_file: Path) -> None:
    root = ET.parse(junit_file).getroot()
    scen = next(s for s in root.iter("testsuite") if s.get("name") == "scenarios")
    cases = list(scen.iter("testcase"))
    assert scen.get("tests") == str(len(cases))
    assert int(scen.get("failures", "0")) == sum(c.find("failure") is not None for c in cases)
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in root.iter("testsuite"))
    error = _cases(junit_file)[("scenarios", "debian-10_0.prebuilt", "normal/tcg")].find("error")
    assert error is not None and "<script>document.title" in error.get("message", "")  # text, escaped
    assert "<script>" not in junit_file.read_text()


def test_control_characters_do_not_break_xml(tmp_path: Path) -> None:
    r = ScenarioResult("t/p/normal/tcg", "normal", "tcg", verdict="fail", reason="x\x00y\x1b[31mz")
    r.checks = [Check("counter-serial", "fail", "N+1", "gap\x07 of 3\x1b[0m", "line\x0b1")]
    broken = BuildRecord.from_json({"cell": "t/p", "verdict": "error", "error": "disk\x1f full"})
    path = write_junit(tmp_path / "junit.xml", [r], {"t/p": broken})
    case = _cases(path)[("scenarios", "t.p", "normal/tcg")]
    assert case.find("failure").get("message") == "counter-serial: gap of 3"  # type: ignore[union-attr]


def test_classname() -> None:
    assert classname("upstream-10.2/lean/normal/tcg") == "upstream-10_2.lean"
    assert classname("upgrade/10.0-to-11.1/cpr-transfer/kvm") == "upgrade.10_0-to-11_1"
    assert classname("t/p") == "t.p"


def test_empty() -> None:
    root = ET.fromstring(junit_xml([], {}).split("\n", 1)[1])
    assert root.get("tests") == "0" and [s.get("name") for s in root] == ["builds", "scenarios"]
