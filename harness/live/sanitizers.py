"""Sanitizer reports in a QEMU's stderr: AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer
(and ThreadSanitizer, MemorySanitizer), as a QEMU configured with ``--enable-asan`` / ``--enable-ubsan``
prints them. Every QEMU of every scenario is scanned, sanitized or not (a report where none was expected
costs nothing to find). Standard library only.

:data:`ENV` is what the driver sets, where the caller has not, for every process it starts: leak
detection off (QEMU leaks by design at exit; a leak report would fail every cell of an ASan build and
hide the memory errors that matter), UBSan with stack traces. A report fails the cell's ``sanitizers``
check, naming the sanitizer, its one-line summary and where (the first stack frame).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:print_summary=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:print_summary=1",
}
EXCERPT_LINES = 24  # of each report, for the check's detail

# `==1234==ERROR: AddressSanitizer: heap-use-after-free on address ...`
_ERROR = re.compile(r"^==\d+==\s*(?:ERROR|WARNING): (\w+Sanitizer): (.*)$")
# `../hw/display/qxl.c:412:5: runtime error: load of misaligned address ...`
_UBSAN = re.compile(r"^(\S+:\d+(?::\d+)?): runtime error: (.*)$")
_SUMMARY = re.compile(r"^SUMMARY: (\w+Sanitizer): (.*)$")
_FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ in (.*)$")


@dataclass(frozen=True)
class Report:
    """One sanitizer report: which sanitizer, what (its headline), where (first frame or source line)."""

    sanitizer: str
    what: str
    where: str
    excerpt: str

    def line(self) -> str:
        return f"{self.sanitizer}: {self.what}" + (f" in {self.where}" if self.where else "")


def scan(text: str) -> list[Report]:
    """Every sanitizer report in ``text``, in order. A SUMMARY line closes a report and is not one."""
    lines = text.splitlines()
    reports = []
    for i, ln in enumerate(lines):
        err, ub = _ERROR.match(ln), _UBSAN.match(ln)
        if not err and not ub:
            continue
        tail = lines[i : i + EXCERPT_LINES]
        frame = next((m.group(1) for t in tail[1:] if (m := _FRAME.match(t))), "")
        if err:
            reports.append(Report(err.group(1), err.group(2).strip(), frame, "\n".join(tail)))
        elif ub:
            where = ub.group(1) + (f" ({frame})" if frame else "")
            reports.append(Report("UndefinedBehaviorSanitizer", ub.group(2).strip(), where, "\n".join(tail)))
    return reports


def summaries(text: str) -> list[str]:
    """The ``SUMMARY: …Sanitizer: …`` lines (a report whose head was cut off still has one)."""
    return [f"{m.group(1)}: {m.group(2)}" for ln in text.splitlines() if (m := _SUMMARY.match(ln))]


def stderr_logs(paths: Iterable[Path]) -> dict[str, str]:
    """Every QEMU's stderr log by file name, each once (the new QEMU of cpr-exec writes to the old one's)."""
    out = {}
    for path in dict.fromkeys(paths):
        with contextlib.suppress(OSError):
            out[path.name] = path.read_text(errors="replace")
    return out
