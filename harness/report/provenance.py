"""A build's source provenance as a maintainer reads it: one short line per key, details folded.

The builder records ``source`` as a JSON object (:mod:`harness.build.sources`): strings, lists of strings,
``{file: sha256}`` maps, and ``subprojects_missing`` (one wrap entry per meson subproject the tree lacks).
Each key becomes a row ``{"key", "text", "lines"}``: ``text`` is what the panel shows, ``lines`` what a
``<details>`` under it lists (a row without ``text`` shows its few lines instead). Nothing is dropped:
every value is in the text or the lines.
"""

from __future__ import annotations

import json
from typing import Any

INLINE_ITEMS = 3  # a map this short is shown line by line, not folded
RUST_SUFFIX = "-rs"  # QEMU's wraps of Rust crates are named <crate>-<major>-rs


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def subprojects_text(missing: list[Any], build_passed: bool) -> tuple[str, list[str]]:
    """``"22 Rust crates, dtc, slirp: not in the source tree, not needed by this profile"`` and the items.

    Items: ``name (type) url`` per entry. "not needed by this profile" is said only of a build that passed
    without them (meson was not allowed to download them, see ``--disable-download``)."""
    entries = [m for m in missing if isinstance(m, dict)]
    names = [str(m.get("name", "?")) for m in entries]
    crates = [n for n in names if n.endswith(RUST_SUFFIX)]
    others = sorted(n for n in names if not n.endswith(RUST_SUFFIX))
    parts = ([f"{len(crates)} Rust crate{'s' if len(crates) != 1 else ''}"] if crates else []) + others
    why = "not in the source tree" + (", not needed by this profile" if build_passed else "")
    text = f"{', '.join(parts)}: {why}" if parts else "none"
    items = [
        f"{m.get('name', '?')} ({m.get('type', '?')}){' ' + str(m['url']) if m.get('url') else ''}"
        for m in entries
    ]
    return text, items


def source_rows(source: dict[str, Any], build_passed: bool) -> list[dict[str, Any]]:
    """One row per key of a build record's ``source``, in the record's order."""
    rows = []
    for key, value in source.items():
        text, items = "", list[str]()
        if key == "subprojects_missing" and isinstance(value, list):
            text, items = subprojects_text(value, build_passed)
            key = "subprojects missing"
        elif isinstance(value, str | int | float | bool) or value is None:
            text = _scalar(value)
        elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            text = ", ".join(str(v) for v in value) or "(none)"
        elif isinstance(value, dict) and all(isinstance(v, str | int | float) for v in value.values()):
            items = [f"{k}: {v}" for k, v in value.items()]
            text = "" if len(items) <= INLINE_ITEMS else f"{len(items)} entries"
        else:
            text = f"{len(value)} entries" if isinstance(value, list | dict) else ""
            items = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
        rows.append({"key": key.replace("_", " "), "text": text, "lines": items})
    return rows
