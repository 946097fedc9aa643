"""The dashboard's matrix: one grid per build row, and the pause-time chart.

A scenario cell id is ``<tree>/<profile>/...`` (or ``upgrade/<name>/...``) plus its scenario, its
accelerator and any further parts (a machine profile, an option set). The dashboard draws one grid per
build row (``tree/profile``), rows grouped by scenario (further parts make extra rows inside the group),
one column per accelerator. New axes add rows, not columns, so a grid stays narrow however the matrix
grows, and the grids wrap side by side on a wide screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.live.result import ScenarioResult
from harness.live.vocab import Accel, CellId, Mode

SCENARIO_ORDER = tuple(str(m) for m in Mode)
ACCEL_ORDER = tuple(str(a) for a in Accel)
CHAR_PX = 7.0  # width of a character of the chart's 12px labels (generous: labels must not be clipped)


def _order(values: Iterable[str], canonical: tuple[str, ...]) -> list[str]:
    return sorted(set(values), key=lambda v: (canonical.index(v) if v in canonical else len(canonical), v))


def row_of(cell_id: str) -> str:
    """The build row of a scenario cell: ``tree/profile`` (or ``upgrade/<name>``), its first two parts."""
    parts = cell_id.split("/")
    return "/".join(parts[:2]) if len(parts) >= 4 else cell_id


def variant_of(r: ScenarioResult) -> str:
    """The parts of a cell id beyond its build row, scenario and accelerator (``""`` for most cells)."""
    rest = r.cell_id.split("/")[2:]
    for known in (str(r.scenario), str(r.accel)):
        if known in rest:
            rest.remove(known)
    return " · ".join(rest)


def grids(views: list[dict[str, Any]], results: list[ScenarioResult]) -> list[dict[str, Any]]:
    """One grid per build row: ``{"row", "anchor", "accels", "variants", "groups": [...]}``.

    ``groups``: one per scenario, in the modes' order: ``{"scenario", "rows": [{"variant", "cells":
    {accel: view}}]}``; build rows in id order, upgrades last."""
    by_id = {v["id"]: v for v in views}
    rows: dict[str, list[ScenarioResult]] = {}
    for r in results:
        rows.setdefault(row_of(r.cell_id), []).append(r)
    out = []
    for row in sorted(rows, key=lambda k: (k.startswith("upgrade/"), k)):
        members = rows[row]
        accels = _order((str(r.accel) for r in members), ACCEL_ORDER)
        groups: list[dict[str, Any]] = []
        for scenario in _order((str(r.scenario) for r in members), SCENARIO_ORDER):
            variants: dict[str, dict[str, Any]] = {}
            for r in members:
                if str(r.scenario) == scenario:
                    variants.setdefault(variant_of(r), {})[str(r.accel)] = by_id[r.cell_id]
            group_rows: list[dict[str, Any]] = [
                {"variant": v, "cells": variants[v]} for v in sorted(variants)
            ]
            groups.append({"scenario": scenario, "rows": group_rows})
        out.append(
            {
                "row": row,
                "anchor": "build-" + CellId(row).folder(),
                "accels": accels,
                "variants": any(line["variant"] for g in groups for line in g["rows"]),
                "groups": groups,
            }
        )
    return out


def chart(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of pause time per cell; the label column is as wide as the longest cell id."""
    bars = [v for v in views if v["pause"] is not None]
    top = max((v["pause"] for v in bars), default=0.0) or 1.0
    label_w = int(max((len(v["id"]) for v in bars), default=10) * CHAR_PX) + 16
    bar_w, row_h = 420, 22
    top = max([top, *(v["spread"]["max"] for v in bars if v.get("spread"))])
    items = []
    for i, v in enumerate(bars):
        item = {"view": v, "y": 24 + i * row_h, "w": max(1.0, bar_w * v["pause"] / top)}
        if v.get("spread"):  # a whisker from the fastest to the slowest repetition (--repeat)
            item["lo"], item["hi"] = bar_w * v["spread"]["min"] / top, bar_w * v["spread"]["max"] / top
        items.append(item)
    width = label_w + bar_w + 250
    return {
        "items": items,
        "x0": label_w,
        "bar_w": bar_w,
        "height": 34 + len(bars) * row_h,
        "top": top,
        "width": width,
    }
