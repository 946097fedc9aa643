"""JUnit XML of a run, for GitLab and Jenkins: one testcase per scenario cell and per build cell.

* ``<testsuite name="scenarios">``: classname ``<tree>.<profile>`` (dots inside a name become ``_`` so
  Jenkins does not split ``upstream-10.2`` into packages), name ``<scenario>/<accel>``. ``fail`` ->
  ``<failure>`` whose message is the first failed check (``name: observed``) or the reason; ``error`` ->
  ``<error>``; ``not-run`` -> ``<error>`` too (a planned cell that never ran is not a pass, and a CI
  system must not count it as skipped); ``unsupported`` -> ``<skipped>``.
* ``<testsuite name="builds">``: one testcase per build cell, name ``build``.

Text is stripped of characters XML 1.0 cannot hold (terminal escapes in logs), so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.live.files import write_text_atomic
from harness.live.result import ScenarioResult
from harness.live.vocab import Verdict
from harness.store.build_record import BuildRecord

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean(text: str) -> str:
    """``text`` without terminal colour codes and without characters XML 1.0 forbids."""
    return _INVALID_XML.sub("", _ANSI.sub("", text))


def classname(cell_id: str) -> str:
    """``upstream-10.2/lean/normal/tcg`` -> ``upstream-10_2.lean``; upgrade cells -> ``upgrade.<name>``."""
    parts = cell_id.split("/")
    head = parts[:-2] if len(parts) >= 4 else parts
    return ".".join(p.replace(".", "_") for p in head) or "cells"


def first_failure(r: ScenarioResult) -> str:
    """The one-line message of a cell that did not pass: its first failed check, else its reason."""
    failed = r.first_failed_check()
    if failed is not None:
        return f"{failed.name}: {failed.observed}"
    return (r.reason.splitlines() or [r.verdict])[0]


def _failure_text(r: ScenarioResult) -> str:
    lines = []
    for c in r.checks:
        if c.failed:
            lines += [f"{c.name}: expected {c.expected}", f"  observed {c.observed}"]
            lines += [f"  {ln}" for ln in c.detail.splitlines()]
    if r.reason:
        lines.append(f"reason: {r.reason}")
    return "\n".join(lines)


def _case(suite: ET.Element, cls: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=clean(cls), name=clean(name), time=f"{seconds:.3f}")


def _child(case: ET.Element, tag: str, message: str, text: str = "", kind: str = "") -> None:
    el = ET.SubElement(case, tag, message=clean(message))
    if kind:
        el.set("type", kind)
    if text:
        el.text = clean(text)


def _scenario_suite(root: ET.Element, results: list[ScenarioResult]) -> None:
    suite = ET.SubElement(root, "testsuite", name="scenarios")
    for r in results:
        case = _case(suite, classname(r.cell_id), f"{r.scenario}/{r.accel}", r.timings.get("total_s", 0.0))
        if r.verdict is Verdict.FAIL:
            _child(case, "failure", first_failure(r), _failure_text(r), "fail")
        elif r.verdict is Verdict.ERROR:
            _child(case, "error", first_failure(r), r.reason, "error")
        elif r.verdict is Verdict.NOT_RUN:
            _child(case, "error", f"not run: {first_failure(r)}", r.reason, "not-run")
        elif r.verdict is Verdict.UNSUPPORTED:
            _child(case, "skipped", f"{r.verdict}: {first_failure(r)}")
        elif r.verdict is not Verdict.PASS:
            _child(case, "error", f"unknown verdict {r.verdict!r}", r.reason, "error")
        out = [f"cell: {r.cell_id}", f"verdict: {r.verdict}"]
        if r.fell_back:
            out.append(f"accelerator used: {r.accel_used}")
        if "pause_ms" in r.timings:
            out.append(f"pause_ms: {r.timings['pause_ms']:.1f}")
        out.append(f"reproduce: {r.reproduce or '(not recorded)'}")
        ET.SubElement(case, "system-out").text = clean("\n".join(out))


def _build_message(record: BuildRecord) -> str:
    message = f"stage {record.stage or '?'}: {record.error or 'build failed'}"
    if record.triage is not None and record.triage.cause:
        message += f" (cause: {record.triage.cause})"
    return message


def _build_suite(root: ET.Element, builds: dict[str, BuildRecord]) -> None:
    suite = ET.SubElement(root, "testsuite", name="builds")
    for cell_id, record in sorted(builds.items()):
        case = _case(suite, classname(cell_id), "build", float(record.durations.get("total_s") or 0.0))
        tail = "\n".join(record.log_tail)
        if record.verdict is Verdict.FAIL:
            _child(case, "failure", _build_message(record), tail, "fail")
        elif not record.ok:
            _child(case, "error", _build_message(record), tail, "error")
        out = [f"build cell: {cell_id}", f"verdict: {record.verdict}", f"qemu: {record.qemu_version or ''}"]
        ET.SubElement(case, "system-out").text = clean("\n".join(out))


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))
    suite.set("time", f"{sum(float(c.get('time', 0)) for c in cases):.3f}")


def junit_xml(results: list[ScenarioResult], builds: dict[str, BuildRecord], run_id: str = "") -> str:
    """The JUnit XML document (a ``<testsuites>`` root) as text."""
    root = ET.Element("testsuites", name=clean(f"cpr-harness {run_id}".strip()))
    _build_suite(root, builds)
    _scenario_suite(root, results)
    for suite in root.findall("testsuite"):
        _count(suite)
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, 0)) for s in root.findall("testsuite"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    path: Path, results: list[ScenarioResult], builds: dict[str, BuildRecord], run_id: str = ""
) -> Path:
    write_text_atomic(Path(path), junit_xml(results, builds, run_id))
    return Path(path)
