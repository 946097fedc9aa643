"""The bisection loop on real git, with each step's outcome given by the test (no build, no QEMU: the
real builds and runs are in test_bisect_real.py): what ends it, what it records, what its page shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gitrepo import linear

from harness.bisect import session
from harness.bisect.steps import StepContext
from harness.errors import ConfigError
from harness.store.bisect_record import BisectRecord, BisectStep, Commit


class FakeTarget:
    kind = "scenario"
    cell_id = "t/lean/cpr-exec/tcg"
    tree_name = "t"

    class build:  # noqa: N801 (stands in for a BuildCell)
        id = "t/lean"


def bisection(
    tmp_path: Path,
    outcome_of: dict[int, str],
    first_bad: int,
    n: int = 20,
    max_steps: int | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[session.Bisection, list[str]]:
    commits = linear(tmp_path / "r", n)
    index = {c: i for i, c in enumerate(commits)}

    def fake(ctx: StepContext, number: int, commit: Commit, role: str) -> BisectStep:
        i = index[commit.commit]
        outcome = outcome_of.get(i, "bad" if i >= first_bad else "good")
        step = BisectStep(number, commit, role, outcome, {"verdict": "pass", "key": f"k{i}"}, reason=f"c{i}")
        step.check = "ram-digest: differ" if outcome == "bad" else ""
        return step

    assert monkeypatch is not None
    monkeypatch.setattr(session, "test_commit", fake)
    folder = tmp_path / "run" / "bisect" / "cell"
    ctx = StepContext(FakeTarget(), tmp_path / "r", None, None, None, 3, folder, "cmd", lambda _: None)  # type: ignore[arg-type]
    record = BisectRecord(
        cell=FakeTarget.cell_id,
        kind="scenario",
        tree="t",
        good=Commit(commits[0]),
        bad=Commit(commits[-1]),
        good_ref="v0",
        bad_ref="master",
        commits=n - 1,
        max_steps=max_steps,
    )
    folder.mkdir(parents=True)
    return session.Bisection(ctx, record, "run"), commits


def test_found_and_recorded_with_its_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, commits = bisection(tmp_path, {}, first_bad=13, monkeypatch=monkeypatch)
    record = b.run()
    assert (
        record.status == "found" and record.first_bad is not None and record.first_bad.commit == commits[13]
    )
    assert record.first_bad.subject == "c13" and record.first_bad_check == "ram-digest: differ"
    assert record.steps[0].role == "bad" and record.steps[0].commit.commit == commits[-1]
    assert len(record.steps) <= 1 + 5  # bad, then ceil(log2 19)
    saved = BisectRecord.from_json(json.loads((b.folder / "bisect.json").read_text()))
    assert saved == record
    page = (b.folder / "index.html").read_text()
    assert "First bad commit" in page and commits[13] in page and "c13" in page


def test_cell_passing_at_bad_is_invalid_after_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, _ = bisection(tmp_path, {19: "good"}, first_bad=13, monkeypatch=monkeypatch)
    with pytest.raises(ConfigError) as err:
        b.run()
    assert "passes at --bad master" in err.value.message and "nothing to bisect" in err.value.message
    record = BisectRecord.from_json(json.loads((b.folder / "bisect.json").read_text()))
    assert record.status == "invalid" and len(record.steps) == 1 and record.finished_at


@pytest.mark.parametrize(("outcome", "words"), [("flaky", "is flaky at"), ("broken", "does not build at")])
def test_bad_endpoint_that_cannot_be_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: str, words: str
) -> None:
    b, _ = bisection(tmp_path, {19: outcome}, first_bad=13, monkeypatch=monkeypatch)
    with pytest.raises(ConfigError) as err:
        b.run()
    assert words in err.value.message


def test_skipped_neighbours_leave_a_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, commits = bisection(tmp_path, {12: "broken", 13: "flaky"}, first_bad=13, monkeypatch=monkeypatch)
    record = b.run()
    assert record.status == "ambiguous" and record.first_bad is None
    assert {c.commit for c in record.candidates} == {commits[12], commits[13], commits[14]}
    assert "one of 3" in record.summary()


def test_budget_leaves_the_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, commits = bisection(tmp_path, {}, first_bad=13, max_steps=3, monkeypatch=monkeypatch)
    record = b.run()
    assert record.status == "budget" and len(record.steps) == 3
    assert commits[13] in {c.commit for c in record.candidates} and len(record.candidates) < 19


def test_first_commit_after_good_is_confirmed_by_testing_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, commits = bisection(tmp_path, {}, first_bad=1, monkeypatch=monkeypatch)
    record = b.run()
    assert record.status == "found" and record.first_bad is not None and record.first_bad.commit == commits[1]
    assert record.steps[-1].role == "good" and record.steps[-1].commit.commit == commits[0]


def test_failing_at_good_too_is_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, _ = bisection(tmp_path, {0: "bad"}, first_bad=1, monkeypatch=monkeypatch)
    with pytest.raises(ConfigError) as err:
        b.run()
    assert "is bad at --good v0" in err.value.message and "not in this range" in err.value.message


def test_interrupt_keeps_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b, _ = bisection(tmp_path, {}, first_bad=13, monkeypatch=monkeypatch)
    real = session.test_commit
    calls: list[Any] = []

    def interrupted(*args: Any) -> BisectStep:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(session, "test_commit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        b.run()
    record = BisectRecord.from_json(json.loads((b.folder / "bisect.json").read_text()))
    assert record.status == "interrupted" and len(record.steps) == 2


def test_cleanup_removes_the_build_dirs_and_the_checkouts_git_chose(tmp_path: Path) -> None:
    """What a bisection built goes after it (~400 MB a checkout); --good's and --bad's checkouts, and
    anything that was a cache hit, stay."""
    good, bad, mid, hit = (Commit(c * 40) for c in "abcd")
    record = BisectRecord(cell="t/lean/cpr-exec/tcg", kind="scenario", tree="t", good=good, bad=bad)
    for number, (commit, role, cache_hit) in enumerate(
        [(bad, "bad", False), (mid, "step", False), (hit, "step", True), (good, "good", False)], 1
    ):
        key = f"key-{commit.commit[0]}"
        (tmp_path / "builds" / key / "obj").mkdir(parents=True)
        (tmp_path / "trees" / f"git-{commit.commit[:16]}").mkdir(parents=True)
        build = {"key": key, "verdict": "pass", "cache_hit": cache_hit}
        record.steps.append(BisectStep(number, commit, role, "good", build))
    said: list[str] = []
    assert session.remove_build_dirs(record, tmp_path, said.append) == 3
    assert sorted(p.parent.name for p in (tmp_path / "builds").glob("*/obj")) == ["key-d"]
    left = sorted(p.name for p in (tmp_path / "trees").iterdir())
    assert left == [f"git-{c * 16}" for c in "abd"] and not said
