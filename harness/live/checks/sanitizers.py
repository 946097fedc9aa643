"""The ``sanitizers`` check: no sanitizer report in the stderr of any QEMU of the scenario."""

from __future__ import annotations

from harness.live import sanitizers
from harness.live.checks.base import Observation, passed_if
from harness.live.result import Check

EXPECTED = "no AddressSanitizer / UndefinedBehaviorSanitizer report in any QEMU's stderr"


def check_sanitizers(obs: Observation) -> Check:
    found: list[str] = []
    details: list[str] = []
    for name, text in obs.qemu_stderr.items():
        reports = sanitizers.scan(text)
        if not reports:  # a report cut at its head still ends in SUMMARY
            found += [f"{name}: {s}" for s in sanitizers.summaries(text)]
        found += [f"{name}: {r.line()}" for r in reports]
        details += [f"--- {name}\n{r.excerpt}" for r in reports]
    observed = "; ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
    seen = f"none in {len(obs.qemu_stderr)} stderr log(s)"
    return passed_if("sanitizers", not found, EXPECTED, observed or seen, "\n".join(details))
