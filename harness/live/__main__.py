"""``python3 -m harness.live SPEC.json OUT.json [FAULTS.json]``: run one scenario, write its result.

Runs inside the scenario container. Exit status 0 whenever a result was written (whatever its verdict),
2 on a bad command line or spec (an ``error`` result is still written when OUT.json is known).
FAULTS.json (tests and ``detect`` only) seeds test faults; the matrix runner never passes it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness.live import sanitizers
from harness.live.errors import SpecError
from harness.live.files import write_json_atomic
from harness.live.repeat import run_repeated
from harness.live.result import ScenarioResult
from harness.live.spec import FaultSpec, ScenarioSpec


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python3 -m harness.live SPEC.json OUT.json [FAULTS.json]", file=sys.stderr)
        return 2
    spec_path, out = Path(argv[0]), Path(argv[1])
    raw: object = None
    try:
        raw = json.loads(spec_path.read_text(encoding="utf-8"))
        spec = ScenarioSpec.from_json(raw)
        faults = (
            FaultSpec.from_json(json.loads(Path(argv[2]).read_text(encoding="utf-8"))) if argv[2:] else None
        )
    except (OSError, ValueError, SpecError) as exc:
        cell_id = str(raw.get("cell_id", "?")) if isinstance(raw, dict) else "?"
        try:
            result = ScenarioResult.error(cell_id, f"bad scenario spec {spec_path}: {exc}")
        except ValueError:  # not even a cell id
            result = ScenarioResult.error("invalid/cell/id", f"bad scenario spec {spec_path}: {exc}")
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        write_json_atomic(out, result.to_json())
        print(f"error: {result.reason}", file=sys.stderr)
        return 2
    for key, value in sanitizers.ENV.items():  # every QEMU the driver starts inherits them
        os.environ.setdefault(key, value)
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, a runner timeout: tear down like Ctrl-C
    try:
        result = run_repeated(spec, faults)
    except Exception as exc:  # run_scenario catches scenario errors; this is the last line of defence
        result = ScenarioResult.error(spec.cell_id, f"harness error: {type(exc).__name__}: {exc}")
    write_json_atomic(out, result.to_json())
    print(f"{spec.cell_id}: {result.verdict}: {result.reason}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
