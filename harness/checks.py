"""Verdicts over what a scenario observed (standard library only; pure functions, no processes).

A scenario fills an :class:`Observation`; :func:`evaluate` turns it into named :class:`Check` records
(the names are stable ids used by reports) and :func:`verdict_of` into the cell's verdict and reason.
"""

from __future__ import annotations

import difflib
import re
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness import qtree
from harness.results import Check

MIGRATION_MODES = ("normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
MODES = ("boot", *MIGRATION_MODES)

# Runstates an outgoing QEMU may pass through, as allowed transitions (query-status names).
SOURCE_TRANSITIONS: dict[str, frozenset[str]] = {
    "running": frozenset({"finish-migrate", "paused", "postmigrate"}),
    "paused": frozenset({"finish-migrate", "postmigrate"}),
    "finish-migrate": frozenset({"postmigrate"}),
    "postmigrate": frozenset(),
}
DESTINATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "inmigrate": frozenset({"running"}),
    "running": frozenset(),
}

# state-file-size: with x-ignore-shared and a named-file backend the guest RAM is not in the stream, only
# device state and small non-shared blocks (ROMs): ~108 KB for 1 or 2 GiB guests. Without it every 4 KiB
# page costs at least 9 bytes even when zero (8-byte page header + 1 byte), i.e. >= guest RAM / 455. The
# limit, guest RAM / 512 + 64 KiB, therefore fails any stream that carries the RAM, even an idle guest's,
# and passes the device-state-only stream for guests of 32 MiB and more (576 KiB for 256 MiB).
STATE_FILE_RAM_DIVISOR = 512
STATE_FILE_ALLOWANCE = 64 * 1024

_COUNTER_RE = re.compile(r"CPRGUEST N=(\d+)(?=\s|$|CPRGUEST)")
_BOOT_RE = re.compile(r"CPRGUEST BOOT\b")


@dataclass
class SideObservation:
    role: str  # "source" | "destination"
    runstates: list[str] = field(default_factory=list)  # query-status at each step, consecutive dups removed
    events: list[dict[str, Any]] = field(default_factory=list)  # {"event", "data", "t" (QEMU epoch s)}
    qtree: str | None = None  # `info qtree` text
    counters: list[int] = field(default_factory=list)  # guest counter read via QMP, in read order
    ram_digest: str | None = None  # sha256 of the guest's pattern region
    exit_code: int | None = None  # None = process still alive at teardown
    resumed_after_migration: bool = False  # src ran again after its migration completed (forbidden)


@dataclass
class Observation:
    mode: str  # boot | normal | cpr-reboot | cpr-transfer | cpr-exec
    serial_log: str  # whole serial log, shared by both sides (append=on)
    source: SideObservation
    destination: SideObservation | None  # None for boot
    guest_ram_bytes: int
    state_file_bytes: int | None = None  # cpr-reboot (and cpr-exec) state file size
    downtime_ms: float | None = None  # QEMU's own figure from query-migrate
    leftover_processes: list[str] = field(default_factory=list)  # "pid comm state" found after teardown
    upgrade: bool = False  # source and destination are different QEMU builds


def _check(name: str, ok: bool, expected: str, observed: str, detail: str = "") -> Check:
    return Check(name, "pass" if ok else "fail", expected, observed, detail)


def _skip(name: str, why: str) -> Check:
    return Check(name, "skip", "-", why)


def _arrow(states: list[str]) -> str:
    return " → ".join(states) if states else "(none)"


def _sequence_problem(
    states: list[str], transitions: dict[str, frozenset[str]], first: str, last: set[str] | None
) -> str | None:
    """Why ``states`` is not a walk from ``first`` through ``transitions`` ending in ``last`` (None = ok)."""
    if not states:
        return "no runstate recorded"
    if states[0] != first:
        return f"starts {states[0]!r}, expected {first!r}"
    for i, (a, b) in enumerate(zip(states, states[1:], strict=False), start=1):
        if b not in transitions.get(a, frozenset()):
            return f"unexpected transition {a} → {b} (#{i} in {_arrow(states)})"
    if last is not None and states[-1] not in last:
        return f"ends {states[-1]!r}, expected {' or '.join(sorted(last))}"
    return None


def check_runstates(obs: Observation) -> Check:
    src, dst = obs.source.runstates, obs.destination.runstates if obs.destination else []
    if obs.mode == "boot":
        problem = ""
        if not src:
            problem = "source: no runstate recorded"
        elif any(s != "running" for s in src):
            problem = f"source left running: {_arrow(src)}"
        return _check(
            "runstates", not problem, "source: running throughout", problem or f"source: {_arrow(src)}"
        )
    if obs.mode == "cpr-exec":  # the old QEMU execs the new one: its sequence just stops once migrated
        src_rule = "source (old QEMU): running → … (it execs the new QEMU)"
        src_problem = _sequence_problem(src, SOURCE_TRANSITIONS, "running", None)
    else:
        src_rule = "source: running → … → postmigrate"
        src_problem = _sequence_problem(src, SOURCE_TRANSITIONS, "running", {"postmigrate"})
    dst_problem = _sequence_problem(dst, DESTINATION_TRANSITIONS, "inmigrate", {"running"})
    if obs.destination is None:
        dst_problem = "no destination recorded"
    problems = [f"{side}: {p}" for side, p in (("source", src_problem), ("destination", dst_problem)) if p]
    seen = f"source: {_arrow(src)}; destination: {_arrow(dst)}"
    return _check(
        "runstates",
        not problems,
        f"{src_rule}; destination: inmigrate → running",
        "; ".join(problems) or seen,
        seen if problems else "",
    )


def check_boot_marker(obs: Observation) -> Check:
    lines = [i for i, line in enumerate(obs.serial_log.splitlines(), 1) for _ in _BOOT_RE.finditer(line)]
    where = f" (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:5]))})" if lines else ""
    observed = f"{len(lines)} boot marker{'s' if len(lines) != 1 else ''}{where}"
    if len(lines) > 1:
        observed += ": the guest was restarted"
    return _check("boot-marker", len(lines) == 1, "exactly one 'CPRGUEST BOOT' line", observed)


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
        return _check(
            "counter-serial", False, expected, f"only {len(values)} counter line(s) in the serial log"
        )
    if violations:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        return _check("counter-serial", False, expected, violations[0] + more, "\n".join(violations[:50]))
    first, last = values[0], values[-1]
    return _check(
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
    if obs.mode == "boot":
        problem = _monotonic_problem("source", src)
        if len(src) < 2:
            problem = f"source: only {len(src)} read(s)"
        elif not problem and src[-1] <= src[0]:
            problem = f"source counter did not advance ({src[0]} → {src[-1]})"
        return _check("counter-qmp", not problem, "source counter increases", problem or f"source: {src}")
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
    return _check(
        "counter-qmp", not problems, expected, "; ".join(problems) or seen, seen if problems else ""
    )


def check_ram_digest(obs: Observation) -> Check:
    if obs.destination is None:
        return _skip("ram-digest", "no destination (boot)")
    a, b = obs.source.ram_digest, obs.destination.ram_digest
    if a is None or b is None:
        missing = [side for side, d in (("source", a), ("destination", b)) if d is None]
        return _skip("ram-digest", f"no {' and '.join(missing)} digest")
    ok = a == b
    observed = f"equal ({a[:16]}…)" if ok else f"source {a[:16]}… ≠ destination {b[:16]}…"
    return _check(
        "ram-digest", ok, "pattern region digest equal on both sides", observed, "" if ok else f"{a}\n{b}"
    )


def qtree_devices(qtree: str) -> Counter[str]:
    """Multiset of ``dev:`` entries, labelled ``type`` (+ ``id "x"``) (+ ``(drive d)`` from its props)."""
    lines = qtree.splitlines()
    out: Counter[str] = Counter()
    for i, line in enumerate(lines):
        m = re.match(r"(\s*)dev: ([^,]+), id \"(.*)\"", line)
        if not m:
            continue
        indent, label = len(m.group(1)), m.group(2) + (f' id "{m.group(3)}"' if m.group(3) else "")
        for prop in lines[i + 1 :]:
            stripped = prop.lstrip()
            if len(prop) - len(stripped) <= indent or stripped.startswith(("dev:", "bus:")):
                break
            d = re.match(r'drive = "(.+)"', stripped)
            if d:
                label += f" (drive {d.group(1)})"
                break
        out[label] += 1
    return out


def check_device_tree(obs: Observation) -> Check:
    if obs.destination is None:
        return _skip("device-tree", "no destination (boot)")
    a, b = obs.source.qtree, obs.destination.qtree
    if a is None or b is None:
        missing = [side for side, t in (("source", a), ("destination", b)) if t is None]
        return _skip("device-tree", f"no {' and '.join(missing)} qtree")
    expected = "`info qtree` identical (source before == destination after)"
    if a == b:
        return _check("device-tree", True, expected, f"identical ({len(a.splitlines())} lines)")
    diff = "\n".join(
        difflib.unified_diff(
            a.splitlines(), b.splitlines(), "source (before)", "destination (after)", lineterm=""
        )
    )
    if obs.upgrade:
        across = qtree.compare_versions(a, b)
        if across.same_devices:
            observed = (
                f"same devices and property values; the destination's QEMU lists "
                f"{len(across.added)} new and {len(across.removed)} dropped property line(s)"
            )
            return _check("device-tree", True, "same devices and values across versions", observed, diff)
        first = (across.structure + across.changed)[0]
        return _check(
            "device-tree",
            False,
            "same devices and values across versions",
            f"{len(across.structure)} device and {len(across.changed)} value change(s), first: {first}",
            diff,
        )
    da, db = qtree_devices(a), qtree_devices(b)
    extra, lacks = sorted((db - da).elements()), sorted((da - db).elements())
    parts = [f"destination has extra dev: {', '.join(extra)}"] if extra else []
    parts += [f"destination lacks dev: {', '.join(lacks)}"] if lacks else []
    if not parts:
        changed = [f"{ln[0]} {ln[1:].strip()}" for ln in diff.splitlines()[2:] if ln[:1] in ("+", "-")]
        first = changed[0] if changed else "?"
        parts = [f"same devices, {len(changed)} changed line(s), first: {first}"]
    return _check("device-tree", False, expected, "; ".join(parts), diff)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def check_process_hygiene(obs: Observation) -> Check:
    problems: list[str] = []
    src, dst = obs.source, obs.destination
    old_must_quit = obs.mode in ("normal", "cpr-reboot", "cpr-transfer")
    if old_must_quit and src.exit_code is None:
        problems.append("source QEMU still alive after migration")
    sides = [("source", src)] + ([("destination", dst)] if dst else [])
    for side, o in sides:
        if o.exit_code not in (None, 0):
            problems.append(f"{side} exited with {_describe_exit(o.exit_code)}")
    if obs.mode != "boot":
        if src.resumed_after_migration:
            problems.append("source ran again after its migration completed")
        completed = False
        for ev in src.events:
            if ev.get("event") == "MIGRATION" and (ev.get("data") or {}).get("status") == "completed":
                completed = True
            elif ev.get("event") == "RESUME" and completed:
                problems.append("source emitted RESUME after MIGRATION completed")
                break
    zombies = [p for p in obs.leftover_processes if "defunct" in p or p.split()[-1:] == ["Z"]]
    if obs.leftover_processes:
        kind = f" ({len(zombies)} defunct)" if zombies else ""
        problems.append(f"leftover processes{kind}: {'; '.join(obs.leftover_processes[:5])}")
    expected = (
        "old QEMU quit (exit 0), " if old_must_quit else ""
    ) + "no resume after migration, no leftovers"
    codes = ", ".join(
        f"{s} exit {'alive' if o.exit_code is None else _describe_exit(o.exit_code)}" for s, o in sides
    )
    return _check("process-hygiene", not problems, expected, "; ".join(problems) or f"{codes}; no leftovers")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_state_file_size(obs: Observation) -> Check:
    if obs.mode != "cpr-reboot":
        return _skip("state-file-size", f"only for cpr-reboot (mode {obs.mode})")
    limit = obs.guest_ram_bytes // STATE_FILE_RAM_DIVISOR + STATE_FILE_ALLOWANCE
    expected = f"< {_size(limit)} (guest RAM / {STATE_FILE_RAM_DIVISOR} + {_size(STATE_FILE_ALLOWANCE)})"
    size = obs.state_file_bytes
    if size is None:
        return _check("state-file-size", False, expected, "state file size not recorded")
    pct = 100 * size / obs.guest_ram_bytes if obs.guest_ram_bytes else float("inf")
    observed = f"{_size(size)} = {pct:.2f}% of {_size(obs.guest_ram_bytes)} guest RAM"
    if size >= limit:
        observed += ": guest RAM was copied (x-ignore-shared / named-file backend not effective)"
    return _check("state-file-size", size < limit, expected, observed)


def _event_time(ev: dict[str, Any]) -> float | None:
    if isinstance(ev.get("t"), int | float):
        return float(ev["t"])
    ts = ev.get("timestamp")
    if isinstance(ts, dict) and "seconds" in ts:
        return ts["seconds"] + ts.get("microseconds", 0) / 1e6
    return None


def pause_ms(obs: Observation) -> tuple[float | None, str]:
    """(source STOP → destination RESUME in ms, or None, explanation) from QEMU event timestamps."""
    if obs.destination is None:
        return None, "no destination"
    stops = [
        t for ev in obs.source.events if ev.get("event") == "STOP" and (t := _event_time(ev)) is not None
    ]
    if not stops:
        return None, "source never emitted STOP"
    resumes = [
        t
        for ev in obs.destination.events
        if ev.get("event") == "RESUME" and (t := _event_time(ev)) is not None
    ]
    after = [t for t in resumes if t >= stops[-1]]
    if not after:
        why = "destination never resumed" if not resumes else "destination RESUME precedes the source STOP"
        return None, why
    return (after[0] - stops[-1]) * 1000, ""


def check_pause_time(obs: Observation) -> Check:
    if obs.destination is None:
        return _skip("pause-time", "no destination (boot)")
    ms, why = pause_ms(obs)
    downtime = f"QEMU downtime {obs.downtime_ms:g} ms" if obs.downtime_ms is not None else "no QEMU downtime"
    expected = "source STOP and destination RESUME events"
    if ms is None:
        return _check("pause-time", False, expected, f"{why} ({downtime})")
    return _check("pause-time", True, expected, f"{ms:.1f} ms ({downtime})")


def evaluate(obs: Observation) -> list[Check]:
    """All checks, in report order; checks that do not apply to ``obs.mode`` are ``skip``."""
    if obs.mode not in MODES:
        raise ValueError(f"unknown mode {obs.mode!r}; expected one of {', '.join(MODES)}")
    return [
        check_runstates(obs),
        check_boot_marker(obs),
        check_counter_serial(obs),
        check_counter_qmp(obs),
        check_ram_digest(obs),
        check_device_tree(obs),
        check_process_hygiene(obs),
        check_state_file_size(obs),
        check_pause_time(obs),
    ]


def verdict_of(checks: list[Check]) -> tuple[str, str]:
    """("pass" | "fail", reason): the reason of a fail is the first failed check's name and observation."""
    if not checks:
        return "fail", "no checks were evaluated"
    for c in checks:
        if c.verdict == "fail":
            return "fail", f"{c.name}: {c.observed}"
    skipped = sum(c.verdict == "skip" for c in checks)
    return "pass", f"{len(checks) - skipped} checks passed" + (f", {skipped} skipped" if skipped else "")
