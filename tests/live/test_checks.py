"""The checks as a whole: a good run of every mode passes every check that applies; verdict_of."""

from __future__ import annotations

import dataclasses

import pytest
from observations import NAMES, good, serial_log

from harness.live.checks import evaluate, verdict_of
from harness.live.result import Check

# --- whole evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"])
def test_good_runs_pass_every_applicable_check(mode: str) -> None:
    checks = evaluate(good(mode))
    assert [c.name for c in checks] == NAMES
    assert all(c.verdict in ("pass", "skip") for c in checks), [c for c in checks if c.verdict == "fail"]
    verdict, reason = verdict_of(checks)
    assert verdict == "pass", reason
    skipped = {c.name for c in checks if c.verdict == "skip"}
    if mode == "boot":
        assert skipped == {"ram-digest", "device-tree", "device-memory", "state-file-size", "pause-time"}
    elif mode == "cpr-reboot":
        assert skipped == set()
    else:
        assert skipped == {"state-file-size"}


def test_unknown_mode_is_rejected() -> None:
    obs = dataclasses.replace(good(), mode="cpr-teleport")
    with pytest.raises(ValueError, match="cpr-teleport"):
        evaluate(obs)


def test_verdict_of_names_first_failed_check() -> None:
    obs = good()
    obs.serial_log = serial_log(0, 40) + serial_log(0, 10)  # guest restarted during migration
    obs.destination.counters = [0, 4, 9]
    verdict, reason = verdict_of(evaluate(obs))
    assert verdict == "fail"
    assert reason.startswith("boot-marker: 2 boot markers")
    assert "restarted" in reason


def test_verdict_of_edge_cases() -> None:
    assert verdict_of([])[0] == "fail"
    checks = [Check("a", "pass", "x", "y"), Check("b", "skip", "-", "n/a")]
    assert verdict_of(checks) == ("pass", "1 checks passed, 1 skipped")
    checks.append(Check("c", "fail", "1", "2"))
    assert verdict_of(checks) == ("fail", "c: 2")
