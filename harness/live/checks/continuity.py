"""Continuity checks: the guest never restarted, its counter kept counting, its RAM is unchanged."""

from __future__ import annotations

import re

from harness.live.checks.base import Observation, passed_if, skipped
from harness.live.result import Check
from harness.live.vocab import Mode

_COUNTER_RE = re.compile(r"CPRGUEST N=(\d+)(?=\s|$|CPRGUEST)")
_BOOT_RE = re.compile(r"CPRGUEST BOOT\b")


def check_boot_marker(obs: Observation) -> Check:
    lines = [i for i, line in enumerate(obs.serial_log.splitlines(), 1) for _ in _BOOT_RE.finditer(line)]
    where = f" (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:5]))})" if lines else ""
    observed = f"{len(lines)} boot marker{'s' if len(lines) != 1 else ''}{where}"
    if len(lines) > 1:
        observed += ": the guest was restarted"
    return passed_if("boot-marker", len(lines) == 1, "exactly one 'CPRGUEST BOOT' line", observed)


def serial_counters(log: str) -> tuple[list[tuple[int, int]], list[str]]:
    """``([(line number, N), ...], [malformed line descriptions])`` from a serial log.

    A final line without a newline is ignored: the log may be cut mid-line at teardown (``N=12`` could
    be the start of ``N=123``). Output of both QEMUs is in one file (append=on), read as one stream.
    """
    lines = log.split("\n")
    if lines and not log.endswith("\n"):
        lines.pop()  # partial (or empty) last line
    values: list[tuple[int, int]] = []
    malformed: list[str] = []
    for no, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        found = [int(m.group(1)) for m in _COUNTER_RE.finditer(line)]
        values.extend((no, n) for n in found)
        if line.count("CPRGUEST") > len(found) + len(_BOOT_RE.findall(line)):
            malformed.append(f"line {no}: malformed {line.strip()[:60]!r}")
    return values, malformed


def check_counter_serial(obs: Observation) -> Check:
    expected = "every 'CPRGUEST N=<n>' line is the previous + 1 (no reset, gap or repeat)"
    values, malformed = serial_counters(obs.serial_log)
    violations: list[str] = []
    for (pl, pn), (ln, n) in zip(values, values[1:], strict=False):
        if n == pn + 1:
            continue
        kind = "repeat" if n == pn else "reset" if n < pn else f"gap of {n - pn - 1}"
        violations.append(f"line {ln}: N={n} after N={pn} at line {pl} ({kind})")
    violations = sorted(malformed + violations, key=lambda v: int(v.split(":")[0].split()[1]))
    if len(values) < 2 and not violations:
        return passed_if(
            "counter-serial", False, expected, f"only {len(values)} counter line(s) in the serial log"
        )
    if violations:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        return passed_if("counter-serial", False, expected, violations[0] + more, "\n".join(violations[:50]))
    first, last = values[0], values[-1]
    return passed_if(
        "counter-serial",
        True,
        expected,
        f"N={first[1]}..{last[1]} on lines {first[0]}..{last[0]}, continuous",
    )


def _monotonic_problem(side: str, values: list[int]) -> str | None:
    for i, (a, b) in enumerate(zip(values, values[1:], strict=False), start=2):
        if b < a:
            return f"{side} read #{i} went back: {a} → {b}"
    return None


def check_counter_qmp(obs: Observation) -> Check:
    src = obs.source.counters
    if obs.mode is Mode.BOOT:
        problem = _monotonic_problem("source", src)
        if len(src) < 2:
            problem = f"source: only {len(src)} read(s)"
        elif not problem and src[-1] <= src[0]:
            problem = f"source counter did not advance ({src[0]} → {src[-1]})"
        return passed_if("counter-qmp", not problem, "source counter increases", problem or f"source: {src}")
    dst = obs.destination.counters if obs.destination else []
    expected = "destination first ≥ source last, then increasing; source non-decreasing"
    problems: list[str] = []
    if not src:
        problems.append("no source read")
    if len(dst) < 2:
        problems.append(f"only {len(dst)} destination read(s): cannot show the guest runs after resume")
    for p in (_monotonic_problem("source", src), _monotonic_problem("destination", dst)):
        if p:
            problems.append(p)
    if src and dst and dst[0] < src[-1]:
        problems.append(f"destination starts at {dst[0]} < source last {src[-1]} (guest state lost)")
    if len(dst) >= 2 and dst[-1] <= dst[0]:
        problems.append(f"destination counter did not advance ({dst[0]} → {dst[-1]}): guest not running")
    seen = f"source {src} → destination {dst}"
    return passed_if(
        "counter-qmp", not problems, expected, "; ".join(problems) or seen, seen if problems else ""
    )


def check_ram_digest(obs: Observation) -> Check:
    if obs.destination is None:
        return skipped("ram-digest", "no destination (boot)")
    a, b = obs.source.ram_digest, obs.destination.ram_digest
    if a is None or b is None:
        missing = [side for side, d in (("source", a), ("destination", b)) if d is None]
        expected = "a digest of the pattern region on both sides"
        return passed_if("ram-digest", False, expected, f"no {' and '.join(missing)} digest was taken")
    ok = a == b
    observed = f"equal ({a[:16]}…)" if ok else f"source {a[:16]}… ≠ destination {b[:16]}…"
    return passed_if(
        "ram-digest", ok, "pattern region digest equal on both sides", observed, "" if ok else f"{a}\n{b}"
    )
