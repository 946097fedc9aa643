"""``python3 -m harness.scenarios SPEC.json OUT.json``: run one scenario, write its result atomically.

Exit status 0 whenever a result was written (whatever its verdict), 2 on a bad command line or spec
(an ``error`` result is still written when OUT.json is known).
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from harness.results import ScenarioResult, write_json_atomic
from harness.scenarios import ScenarioSpec, run_scenario


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 -m harness.scenarios SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec_path, out = Path(argv[0]), Path(argv[1])
    try:
        raw = json.loads(spec_path.read_text(encoding="utf-8"))
        spec = ScenarioSpec.from_json(raw)
    except (OSError, ValueError, TypeError) as exc:
        cell_id = raw.get("cell_id", "?") if isinstance(locals().get("raw"), dict) else "?"
        result = ScenarioResult.error(str(cell_id), f"bad scenario spec {spec_path}: {exc}")
        result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        write_json_atomic(out, result.to_json())
        print(f"error: {result.reason}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, a runner timeout: tear down like Ctrl-C
    try:
        result = run_scenario(spec)
    except Exception as exc:  # run_scenario catches scenario errors; this is the last line of defence
        result = ScenarioResult.error(spec.cell_id, f"harness error: {type(exc).__name__}: {exc}")
    write_json_atomic(out, result.to_json())
    print(f"{spec.cell_id}: {result.verdict}: {result.reason}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
