"""Shared by the bench scripts: print measured ratios against their goals and append them to RESULTS.md."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Figure:
    name: str
    ratio: float
    goal: float  # the ratio must be at most this
    measured: str  # the raw numbers behind the ratio


def mmm(values: list[float], unit: str = "s") -> str:
    """``median (min–max, n)`` of samples, e.g. ``2.61s (2.55–2.70, n=5)``."""
    ordered = sorted(values)
    mid = (
        ordered[len(ordered) // 2]
        if len(ordered) % 2
        else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    )
    return f"{mid:.2f}{unit} ({ordered[0]:.2f}–{ordered[-1]:.2f}, n={len(ordered)})"


def record(title: str, context: str, figures: Iterable[Figure], extra: Iterable[str] = ()) -> str:
    """Print one section (a table of figures, then ``extra`` lines) and append it to bench/RESULTS.md."""
    machine = f"{os.cpu_count()} cores, {platform.platform()}"
    lines = [f"\n## {title}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "", f"Machine: {machine}; {context}.",
             "", "| figure | ratio | goal | measured |", "|---|---|---|---|"]  # fmt: skip
    for f in figures:
        verdict = "met" if f.ratio <= f.goal else "missed"
        lines.append(f"| {f.name} | {f.ratio:.3f} | <= {f.goal} ({verdict}) | {f.measured} |")
    text = "\n".join([*lines, *extra]) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in bench/ from real runs.\n")
    with RESULTS.open("a") as handle:
        handle.write(text)
    return text
