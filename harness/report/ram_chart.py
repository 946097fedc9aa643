"""Pause versus guest RAM: does a mode's pause stay flat as the guest grows? A table and an inline SVG.

Built from results that carry ``timings.guest_ram_mb`` (every result since the driver records it): one
series per (mode, accelerator actually used), one point per RAM size, the median pause with the range of
its samples, and the migration's total time (``migrate`` issued -> destination running) beside it.
Shown when some series has at least two RAM sizes. Used by the dashboard and by bench/pause_ram.py.
All text in the SVG is escaped here: it is inserted into the page as markup.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.live.result import ScenarioResult
from harness.live.vocab import Verdict

COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a")


@dataclass
class Point:
    ram_mb: float
    pauses: list[float]
    migrations: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.pauses)

    @property
    def migration(self) -> float | None:
        return statistics.median(self.migrations) if self.migrations else None


def series_of(results: Iterable[ScenarioResult]) -> dict[str, list[Point]]:
    """``{"<mode> (<accel>)": [points by RAM]}`` for the passing results that measured a pause."""
    found: dict[str, dict[float, Point]] = {}
    for r in results:
        ram, pauses = r.timings.get("guest_ram_mb"), r.pause_samples()
        if r.verdict is not Verdict.PASS or ram is None or not pauses:
            continue
        migrations = [s["migration_ms"] for s in r.samples if "migration_ms" in s]
        if not migrations and "switch_s" in r.timings:
            migrations = [r.timings["switch_s"] * 1000]
        name = f"{r.scenario} ({r.accel_used or r.accel})"
        point = found.setdefault(name, {}).setdefault(ram, Point(ram, []))
        point.pauses += pauses
        point.migrations += migrations
    return {k: sorted(v.values(), key=lambda p: p.ram_mb) for k, v in sorted(found.items()) if len(v) >= 2}


def table_rows(series: dict[str, list[Point]]) -> list[dict[str, str]]:
    rows = []
    for name, points in series.items():
        for p in points:
            migration = p.migration
            rows.append({
                "series": name,
                "ram": _size(p.ram_mb),
                "pause": f"{p.median:.1f} ({min(p.pauses):.1f}–{max(p.pauses):.1f}, n={len(p.pauses)})",
                "migration": "" if migration is None else f"{migration:.0f}",
            })  # fmt: skip
    return rows


def markdown(series: dict[str, list[Point]]) -> str:
    lines = ["| mode (accel) | guest RAM | pause ms: median (min–max, n) | migration ms (median) |",
             "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r['series']} | {r['ram']} | {r['pause']} | {r['migration']} |" for r in table_rows(series)]
    return "\n".join(lines)


def svg(series: dict[str, list[Point]], width: int = 720, height: int = 360) -> str:
    """A log-log chart: x guest RAM, y median pause (whiskers: min to max of the samples)."""
    if not series:
        return ""
    left, right, top, bottom = 70, 190, 20, 50
    rams = [p.ram_mb for pts in series.values() for p in pts]
    values = [v for pts in series.values() for p in pts for v in p.pauses]
    x_lo, x_hi = math.log10(min(rams)), math.log10(max(rams))
    y_lo, y_hi = math.log10(max(min(values), 0.01)) - 0.1, math.log10(max(values)) + 0.1
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(ram: float) -> float:
        return left + (math.log10(ram) - x_lo) / ((x_hi - x_lo) or 1) * plot_w

    def y(ms: float) -> float:
        return top + plot_h - (math.log10(max(ms, 0.01)) - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    out = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Guest pause (ms, log) versus guest RAM (log)</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#8c959f"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8c959f"/>',
    ]
    for ram in sorted(set(rams)):
        out.append(f'<text x="{x(ram):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_size(ram)}</text>')
    for exp in range(math.floor(y_lo), math.ceil(y_hi) + 1):
        ms = 10.0**exp
        if y_lo <= exp <= y_hi:
            out.append(f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:g} ms</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 10}" text-anchor="middle">guest RAM</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{x(p.ram_mb):.1f},{y(p.median):.1f}" for j, p in enumerate(points)
        )
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in points:
            px = x(p.ram_mb)
            out.append(
                f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(min(p.pauses)):.1f}" y2="{y(max(p.pauses)):.1f}" '
                f'stroke="{colour}"/><circle cx="{px:.1f}" cy="{y(p.median):.1f}" r="3" fill="{colour}">'
                f"<title>{html.escape(name)}, {_size(p.ram_mb)}: {p.median:.1f} ms</title></circle>"
            )
        ly = top + 14 + 18 * i
        out.append(
            f'<rect x="{left + plot_w + 16}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 32}" y="{ly}">{html.escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _size(mb: float) -> str:
    return f"{mb / 1024:g} GiB" if mb >= 1024 else f"{mb:g} MiB"
