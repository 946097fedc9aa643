"""Records used by tests of several packages (a full scenario result, ...)."""

from __future__ import annotations

from harness.live.result import Check, QmpRecord, ScenarioResult, Step
from harness.live.vocab import CheckVerdict, Verdict

CELL = "debian-11.1/default/cpr-transfer/kvm"


def full_result(cell_id: str = CELL, verdict: Verdict = Verdict.FAIL) -> ScenarioResult:
    return ScenarioResult(
        cell_id=cell_id,
        scenario="cpr-transfer",
        accel="kvm",
        accel_used="kvm",
        verdict=verdict,
        reason="device-tree: destination has extra dev: ide-hd (drive ide0-hd0)",
        checks=[
            Check(
                "runstates",
                CheckVerdict.PASS,
                "source: running → … → postmigrate",
                "source: running → postmigrate",
            ),
            Check(
                "device-tree",
                CheckVerdict.FAIL,
                "identical",
                "extra dev: ide-hd",
                '--- a\n+++ b\n+  dev: ide-hd, id ""',
            ),
            Check("state-file-size", CheckVerdict.SKIP, "-", "only for cpr-reboot (mode cpr-transfer)"),
        ],
        steps=[
            Step("start-source", "source", 0.0, 0.41, True),
            Step("migrate", "source", 2.5, 0.012, True, "channels: main+cpr"),
            Step("migrate-incoming", "destination", 2.52, 0.003, False, "timeout"),
        ],
        qmp=[
            QmpRecord("source", 1795000002.5, "command", "migrate", {"channels": [{"channel-type": "main"}]}),
            QmpRecord("source", 1795000002.501, "event", "STOP", {}),
            QmpRecord("destination", 1795000002.503, "event", "RESUME", {}),
            QmpRecord(
                "destination", 1795000002.6, "error", "cont", {"class": "GenericError", "desc": "ünïcode"}
            ),
        ],
        timings={"total_s": 7.25, "pause_ms": 2.5, "downtime_ms": 2.0},
        qemu_version={"source": "11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)", "destination": "11.1.3"},
        logs={"serial": "serial.log", "stderr-src": "stderr-src.log"},
        reproduce="python -m harness run --cell debian-11.1/default/cpr-transfer/kvm",
        started_at="2026-11-26T13:05:01+00:00",
        finished_at="2026-11-26T13:05:08+00:00",
    )
