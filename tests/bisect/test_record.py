"""bisect.json: round trip, tolerant reading, the one-line answer; a step's outcome from the cell's runs."""

from __future__ import annotations

import pytest

from harness.bisect.steps import classify
from harness.live.result import Check, ScenarioResult
from harness.live.vocab import CheckVerdict, Verdict
from harness.store.bisect_record import BisectRecord, BisectStep, Commit


def record() -> BisectRecord:
    good, bad = Commit("a" * 40, "base", "T <t@x>", "2026-01-01T00:00:00Z"), Commit("b" * 40, "tip")
    r = BisectRecord(cell="t/p/cpr-exec/tcg", kind="scenario", tree="t", good=good, bad=bad, commits=43)
    r.steps.append(
        BisectStep(
            1, bad, "bad", "bad", {"verdict": "pass", "cache_hit": False}, ["fail"] * 3, "ram-digest: x"
        )
    )
    r.steps.append(
        BisectStep(2, Commit("c" * 40, "mid"), "step", "good", {"verdict": "pass", "cache_hit": True})
    )
    return r


def test_round_trip_and_counts() -> None:
    r = record()
    r.status, r.first_bad, r.first_bad_check = "found", Commit("d" * 40, "the bug"), "ram-digest: differ"
    back = BisectRecord.from_json(r.to_json())
    assert back == r
    assert back.builds() == 1  # the cache hit does not count as a build
    assert back.summary() == "first bad commit dddddddddddd 'the bug' (ram-digest: differ)"


def test_an_upgrades_fixed_source_round_trips() -> None:
    r = record()
    r.kind, r.fixed = "upgrade", {"cell": "old/lean", "key": "0123456789abcdef", "qemu_version": "10.2.2"}
    assert BisectRecord.from_json(r.to_json()).fixed == r.fixed
    data = r.to_json()
    data["fixed"] = "not an object"
    assert BisectRecord.from_json(data).fixed == {}


def test_ambiguous_summary_lists_the_candidates() -> None:
    r = record()
    r.status, r.candidates = "ambiguous", [Commit("e" * 40, "x"), Commit("f" * 40, "y")]
    assert (
        r.summary()
        == "only skipped commits left: the first bad commit is one of 2: eeeeeeeeeeee, ffffffffffff"
    )


@pytest.mark.parametrize("bad", [[], "x", {"cell": "c"}, {"cell": "c", "good": {}, "bad": {"commit": "b"}}])
def test_not_a_record_raises(bad: object) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        BisectRecord.from_json(bad)


def test_unknown_status_reads_as_error() -> None:
    data = record().to_json()
    data["status"] = "weird"
    assert BisectRecord.from_json(data).status == "error"


def result(runs: list[bool], verdict: Verdict = Verdict.FAIL) -> ScenarioResult:
    r = ScenarioResult(
        cell_id="t/p/cpr-exec/tcg", scenario="cpr-exec", accel="tcg", verdict=verdict, reason="why"
    )
    r.samples = [{"repetition": float(i + 1), "passed": 1.0 if ok else 0.0} for i, ok in enumerate(runs)]
    if verdict is Verdict.FAIL:
        r.checks = [Check("ram-digest", CheckVerdict.FAIL, "same", "differ")]
    return r


def test_classify() -> None:
    assert classify(result([True, True, True], Verdict.PASS), 3)[0] == "good"
    outcome, runs, check, _ = classify(result([False, False, False]), 3)
    assert (outcome, runs, check) == ("bad", ["fail"] * 3, "ram-digest: differ")
    outcome, runs, _, reason = classify(result([False, True, True]), 3)
    assert (outcome, runs) == ("flaky", ["fail", "pass", "pass"]) and reason.startswith("2 of 3 runs passed")
    assert classify(result([False, False], Verdict.ERROR), 2)[0] == "unjudged"
    assert classify(result([False], Verdict.UNSUPPORTED), 3)[0] == "unjudged"  # the loop stops at unsupported
    single = ScenarioResult(cell_id="t/p/normal/tcg", scenario="normal", accel="tcg", verdict=Verdict.FAIL)
    assert classify(single, 1)[:2] == ("bad", ["fail"])
