#!/usr/bin/env python3
"""Guest benchmarks (issue: a real guest on real devices). Prints figures; asserts nothing.

1. the Linux guest's assembly: a cache hit vs assembling it (same inputs, a fresh cache; goal <= 0.1);
2. every mode on TCG and KVM for the firmware guest (machine ``minimal``) and the Linux guest (machine
   ``virtio``) of matrices/devices.yaml on the upstream 10.2.2 build, one cell at a time: the guest's
   boot time (QEMU started -> the guest counts: step "guest boots and counts") and the pause (source
   STOP -> destination RESUME, QEMU's timestamps). A KVM cell the host cannot run is shown as such.
Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from ratios import Figure, record  # noqa: E402

MATRIX = "matrices/devices.yaml"
TREE = "upstream-10.2/lean"
MODES = ("boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec")
GUESTS = (("firmware guest", ""), ("Linux guest (virtio)", "virtio/"))


def cells() -> list[str]:
    return [
        f"{TREE}/{machine}{mode}/{accel}"
        for _, machine in GUESTS
        for mode in MODES
        for accel in ("tcg", "kvm")
    ]


def run(reports: Path) -> tuple[dict[str, dict], float]:
    argv = [sys.executable, "-m", "harness", "test", "--matrix", MATRIX, "--reports", str(reports),
            "--run-id", "bench", "--cells", *cells()]  # fmt: skip
    started = time.monotonic()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, check=False)
    took = time.monotonic() - started
    data = json.loads((reports / "bench" / "results.json").read_text())
    return {r["cell_id"]: r for r in data["scenarios"]}, took


def boot_s(r: dict) -> float | None:
    step = next((s for s in r.get("steps", []) if s["name"] == "guest boots and counts" and s["ok"]), None)
    return step["duration"] if step else None


def shown(r: dict | None) -> str:
    if r is None:
        return "not run"
    if r["verdict"] == "unsupported":
        return "unsupported: " + (
            "host KVM cannot run it" if "KVM internal error" in r["reason"] else r["reason"][:60]
        )
    if r["verdict"] != "pass":
        return f"{r['verdict']}: {r['reason'][:60]}"
    boot, pause = boot_s(r), r.get("timings", {}).get("pause_ms")
    fell = " (ran on tcg)" if r.get("accel_used") not in ("", r["accel"]) else ""
    return (
        (f"boot {boot:.2f} s" if boot is not None else "boot ?")
        + (f", pause {pause:.1f} ms" if pause else "")
        + fell
    )


def assembly() -> Figure:
    sys.path.insert(0, str(REPO))
    from harness.build.guest import assemble_guest
    from harness.engine.containers import Engine

    engine = Engine.connect(progress=lambda line: None)
    engine.ensure_image("linux-guest")
    with tempfile.TemporaryDirectory(prefix="guest-bench-cache-") as tmp:
        times = []
        for _ in range(2):
            started = time.monotonic()
            assemble_guest(engine, Path(tmp), progress=lambda line: None)
            times.append(time.monotonic() - started)
    return Figure("Linux guest: cache hit / assembled (same inputs)", times[1] / times[0], 0.1,
                  f"{times[1]:.3f}s / {times[0]:.2f}s")  # fmt: skip


def main() -> None:
    figure = assembly()
    with tempfile.TemporaryDirectory(prefix="guest-bench-") as tmp:
        results, took = run(Path(tmp))
    lines = ["", "| mode | accel | " + " | ".join(name for name, _ in GUESTS) + " |", "|---|---|---|---|"]
    for mode in MODES:
        for accel in ("tcg", "kvm"):
            row = [shown(results.get(f"{TREE}/{machine}{mode}/{accel}")) for _, machine in GUESTS]
            lines.append(f"| {mode} | {accel} | " + " | ".join(row) + " |")
    lines.append("\nboot: QEMU started -> the guest counts (step 'guest boots and counts');")
    lines.append("pause: source STOP -> destination RESUME (QEMU's timestamps).")
    context = (
        f"{MATRIX}, {TREE}, machines minimal and virtio, {len(results)} cells one at a time in {took:.0f} s"
    )
    record("Guest benchmarks", context, [figure], lines)


if __name__ == "__main__":
    main()
