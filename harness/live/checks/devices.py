"""Device checks: the destination has the devices (and property values) the source had."""

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
