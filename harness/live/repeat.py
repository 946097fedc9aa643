"""``--repeat N``: one scenario run N times in the same container, every repetition a fresh pair of QEMUs.

Each repetition runs in its own folder (``<workdir>/rep-<k>``) and contributes one sample (its pause,
its migration time, QEMU's downtime, the state file's size, its verdict). The cell's result is the
first repetition that did not pass (so its checks, steps and logs explain the failure), else the last;
its verdict is ``fail`` (or ``error``) when any repetition's was, and its ``pause_ms`` is the median
of the samples. An ``unsupported`` repetition ends the loop: QEMU will not change its mind.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
from pathlib import Path

from harness.live.driver import run_scenario
from harness.live.result import ScenarioResult
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import Verdict

SAMPLE_KEYS = ("pause_ms", "downtime_ms", "state_file_bytes", "total_s")


def sample_of(result: ScenarioResult, repetition: int) -> dict[str, float]:
    """The figures of one repetition (``migration_ms``: ``migrate`` issued -> destination running)."""
    sample = {k: result.timings[k] for k in SAMPLE_KEYS if k in result.timings}
    if "switch_s" in result.timings:
        sample["migration_ms"] = round(result.timings["switch_s"] * 1000, 3)
    sample["repetition"] = float(repetition)
    sample["passed"] = 1.0 if result.verdict is Verdict.PASS else 0.0
    return sample


def run_repeated(spec: ScenarioSpec, faults: FaultSpec | None = None) -> ScenarioResult:
    """Run ``spec`` ``spec.repeat`` times (see the module docstring); a single run is run as is."""
    if spec.repeat <= 1:
        return run_scenario(spec, faults)
    top = Path(spec.workdir)
    samples: list[dict[str, float]] = []
    chosen: tuple[int, ScenarioResult] | None = None
    for k in range(1, spec.repeat + 1):
        result = run_scenario(dataclasses.replace(spec, workdir=str(top / f"rep-{k}")), faults)
        samples.append(sample_of(result, k))
        if chosen is None and result.verdict is not Verdict.PASS:
            chosen = (k, result)
            if result.verdict is Verdict.UNSUPPORTED:
                break
        elif chosen is None and k == spec.repeat:
            chosen = (k, result)
    assert chosen is not None
    k, result = chosen
    for rel in result.logs.values():  # the chosen repetition's logs, where the host collects them
        src = top / f"rep-{k}" / rel
        if src.is_file() and not src.is_symlink():
            shutil.copyfile(src, top / rel)
    result.samples = samples
    pauses = [s["pause_ms"] for s in samples if "pause_ms" in s]
    if pauses:
        result.timings["pause_ms"] = round(statistics.median(pauses), 3)
    result.timings["repetitions"] = float(len(samples))
    failed = [int(s["repetition"]) for s in samples if not s["passed"]]
    if result.verdict is not Verdict.PASS:
        result.reason = f"repetition {k} of {spec.repeat}: {result.reason}"
        if len(failed) > 1:
            result.reason += f" (repetitions {', '.join(map(str, failed))} did not pass)"
    else:
        result.reason += f" in each of {len(samples)} repetitions"
    return result
