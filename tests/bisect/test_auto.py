"""--bisect auto: which regressions of a night are bisected, between which commits, within one budget,
and where the answer shows (the dashboard, beside the regression). The steps' outcomes are given by the
test (the real builds and runs are in test_bisect_real.py); git, the records and the report are real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO
from sourcekit import GIT_ENV, git

from harness.bisect import auto, session
from harness.bisect.steps import StepContext
from harness.config.matrix import load_matrix
from harness.live.result import Check, ScenarioResult
from harness.live.vocab import CheckVerdict, Verdict
from harness.report.render import render_run
from harness.store.bisect_record import BisectRecord, BisectStep, Commit
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore

MATRIX = """\
trees:
  mine:
    kind: local
    image: debian-trixie
    path: {path}
  deb:
    kind: debian-source
    image: debian-trixie
    version: "1:10.2.2+ds-1"
profiles:
  lean:
    configure: [--target-list=x86_64-softmmu]
    targets: [qemu-system-x86_64]
scenarios: [cpr-exec, normal]
accels: [tcg]
"""
FIRST_BAD = 9


class FakeBuilder:
    engine = None
    cache = Path("/nonexistent")


def night(reports: Path, name: str, commit: str, verdicts: dict[str, Verdict]) -> Path:
    store = RunStore(reports / name)
    store.root.mkdir(parents=True)
    for build in ("mine/lean", "deb/lean"):
        record = BuildRecord(
            cell=build, tree=build.split("/")[0], kind="local", profile="lean", verdict=Verdict.PASS
        )
        record.source = (
            {"digest": "sha256:x", "git": {"head": commit, "dirty": False}} if build == "mine/lean" else {}
        )
        store.save_build(record, build)
    for cell, verdict in verdicts.items():
        result = ScenarioResult(cell_id=cell, scenario=cell.split("/")[-2], accel="tcg", verdict=verdict)
        if verdict is Verdict.FAIL:
            result.checks = [Check("counter-qmp", CheckVerdict.FAIL, "continues", "restarted at 0")]
        store.save_scenario(result)
    store.write_summary()
    return store.root


def test_the_nights_regressions_are_bisected_and_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q")
    commits = []
    for i in range(16):
        (src / "f").write_text(str(i))
        git(src, "add", "f")
        git(src, "commit", "-qm", f"c{i}")
        commits.append(git(src, "rev-parse", "HEAD"))
    index = {c: i for i, c in enumerate(commits)}

    def fake(ctx: StepContext, number: int, commit: Commit, role: str) -> BisectStep:
        bad = index[commit.commit] >= FIRST_BAD
        step = BisectStep(
            number, commit, role, "bad" if bad else "good", {"verdict": "pass", "cache_hit": True}
        )
        step.check = "counter-qmp: restarted at 0" if bad else ""
        return step

    monkeypatch.setattr(session, "test_commit", fake)
    (tmp_path / "m.yaml").write_text(MATRIX.format(path=src))
    matrix = load_matrix(tmp_path / "m.yaml", repo_root=REPO)
    reports = tmp_path / "reports"
    red = {"mine/lean/cpr-exec/tcg": Verdict.FAIL, "mine/lean/normal/tcg": Verdict.FAIL,
           "deb/lean/normal/tcg": Verdict.FAIL}  # fmt: skip
    night(reports, "20261201T020000Z", commits[2], dict.fromkeys(red, Verdict.PASS))
    run = night(reports, "20261202T020000Z", commits[-1], red)
    summary = render_run(run)
    assert summary.history is not None and len(summary.history.regressions) == 3
    said: list[str] = []
    done = auto.after_run(run, summary, matrix, FakeBuilder(), 8, 3, [], 14, said.append)  # type: ignore[arg-type]

    # mine's first regression is bisected between the two nights' commits; the budget (8) then covers
    # part of the second; deb's tree holds no commits: said, not bisected
    folder = run / "bisect" / "mine__lean__cpr-exec__tcg"
    record = BisectRecord.from_json(json.loads((folder / "bisect.json").read_text()))
    assert record.status == "found" and record.first_bad is not None
    assert record.first_bad.commit == commits[FIRST_BAD] and record.good.commit == commits[2]
    assert record.origin == "auto: regression since run 20261201T020000Z"
    second = BisectRecord.from_json(
        json.loads((run / "bisect/mine__lean__normal__tcg/bisect.json").read_text())
    )
    assert len(record.steps) + len(second.steps) <= 8 and second.status in ("budget", "found")
    assert any("deb/lean/normal/tcg: not bisected" in line and "kind debian-source" in line for line in said)

    # the dashboard: the answer beside the regression, and the list of bisections
    index_html = (run / "index.html").read_text()
    assert f"bisected: first bad commit {commits[FIRST_BAD][:12]}" in index_html
    assert (
        'href="bisect/mine__lean__cpr-exec__tcg/index.html"' in index_html and 'id="bisections"' in index_html
    )
    assert done.history is not None and len(done.history.regressions) == 3


def test_built_commit_of_records() -> None:
    record = BuildRecord(cell="t/p", tree="t", kind="git", profile="p", source={"commit": "abc"})
    assert auto.built_commit(record) == "abc"
    record.source = {"git": {"head": "def", "dirty": True}}
    assert auto.built_commit(record) == ""  # a dirty checkout built no commit
    record.source = {"git": {"head": "def", "dirty": False}}
    assert auto.built_commit(record) == "def"
    assert auto.built_commit(None) == "" and auto.built_commit(BuildRecord("t/p", "t", "tarball", "p")) == ""
