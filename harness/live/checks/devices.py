"""Device checks: the destination has the devices (and property values) the source had, and the device
memory the guest does not write (firmware ROM and flash, option ROMs, video memory, ACPI tables) is
byte-identical on both sides."""

from __future__ import annotations

import difflib
import re
from collections import Counter

from harness.live import qtree
from harness.live.checks.base import Observation, passed_if, skipped
from harness.live.result import Check


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
        return skipped("device-tree", "no destination (boot)")
    a, b = obs.source.qtree, obs.destination.qtree
    if a is None or b is None:
        missing = [side for side, t in (("source", a), ("destination", b)) if t is None]
        expected = "`info qtree` of both sides"
        return passed_if("device-tree", False, expected, f"no {' and '.join(missing)} qtree was read")
    expected = "`info qtree` identical (source before == destination after)"
    if a == b:
        return passed_if("device-tree", True, expected, f"identical ({len(a.splitlines())} lines)")
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
            return passed_if("device-tree", True, "same devices and values across versions", observed, diff)
        first = (across.structure + across.changed)[0]
        return passed_if(
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
    return passed_if("device-tree", False, expected, "; ".join(parts), diff)


def check_device_memory(obs: Observation) -> Check:
    if obs.destination is None:
        return skipped("device-memory", "no destination (boot)")
    a, b = obs.source.device_memory, obs.destination.device_memory
    expected = (
        "every ROM, flash, video-memory head and ACPI table identical (source before, destination after)"
    )
    if not a or not b:
        missing = [side for side, d in (("source", a), ("destination", b)) if not d]
        return passed_if(
            "device-memory", False, expected, f"no {' and '.join(missing)} device memory was read"
        )
    rows, problems = [], []
    for label in sorted(a.keys() | b.keys()):
        x, y = a.get(label), b.get(label)
        same = x == y
        mark = "same     " if same else "DIFFERENT"
        rows.append(f"{mark} {label}: {(x or 'absent')[:16]} -> {(y or 'absent')[:16]}")
        if x is None:
            problems.append(f"destination has an extra region {label}")
        elif y is None:
            problems.append(f"destination lacks {label}")
        elif not same:
            problems.append(f"{label} changed")
    observed = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    return passed_if(
        "device-memory",
        not problems,
        expected,
        observed or f"{len(rows)} region(s) identical",
        "\n".join(rows),
    )
