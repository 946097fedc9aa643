"""Structure of ``info qtree`` text, for comparing device trees of two different QEMU versions.

The same binary on both sides must give byte-identical text. Across versions (an upgrade), a newer QEMU
may list properties the older one did not have (``sriov-pf = ""`` in 10.2 for PCI devices); that is not
a change of the guest's devices. What must still hold: the same buses and devices in the same places,
and every property both versions know has the same value. Standard library only (runs in containers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NODE = re.compile(r"^(\s*)((?:bus|dev): .*)$")
PROP = re.compile(r"^(\s*)([\w.-]+) = (.*)$")


@dataclass
class VersionDiff:
    structure: list[str] = field(default_factory=list)  # buses/devices present on one side only
    changed: list[str] = field(default_factory=list)  # a property both know, with different values
    added: list[str] = field(default_factory=list)  # properties only the destination lists
    removed: list[str] = field(default_factory=list)  # properties only the source lists

    @property
    def same_devices(self) -> bool:
        return not self.structure and not self.changed


def parse(text: str) -> dict[tuple[str, ...], dict[str, str]]:
    """Map each bus/device path (labels from the root, duplicates numbered) to its properties."""
    nodes: dict[tuple[str, ...], dict[str, str]] = {}
    stack: list[tuple[int, tuple[str, ...]]] = []
    seen: dict[tuple[str, ...], int] = {}
    for line in text.splitlines():
        node, prop = NODE.match(line), PROP.match(line)
        if node:
            indent = len(node.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1] if stack else ()
            label = node.group(2).strip()
            count = seen.get((*parent, label), 0)
            seen[(*parent, label)] = count + 1
            path = (*parent, label if count == 0 else f"{label} #{count + 1}")
            nodes[path] = {}
            stack.append((indent, path))
        elif prop and stack:
            indent = len(prop.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                nodes[stack[-1][1]][prop.group(2)] = prop.group(3)
    return nodes


def compare_versions(source: str, destination: str) -> VersionDiff:
    a, b = parse(source), parse(destination)
    diff = VersionDiff()
    for path in a.keys() - b.keys():
        diff.structure.append(f"destination lacks {path[-1]} (under {' / '.join(path[:-1]) or 'root'})")
    for path in b.keys() - a.keys():
        diff.structure.append(f"destination has extra {path[-1]} (under {' / '.join(path[:-1]) or 'root'})")
    for path in sorted(a.keys() & b.keys()):
        pa, pb = a[path], b[path]
        where = path[-1]
        diff.changed += [
            f"{where}: {k} {pa[k]} -> {pb[k]}" for k in sorted(pa.keys() & pb.keys()) if pa[k] != pb[k]
        ]
        diff.added += [f"{where}: {k}" for k in sorted(pb.keys() - pa.keys())]
        diff.removed += [f"{where}: {k}" for k in sorted(pa.keys() - pb.keys())]
    diff.structure.sort()
    return diff
