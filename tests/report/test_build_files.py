"""The report copies a build's log and reproduce.sh into the run folder without following any link: not
at the source (the build cache), not at the destination (a crafted run folder)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.render import render_run
from harness.store.build_record import BuildRecord
from harness.store.runs import RunStore


def _run_with_build(tmp_path: Path, log: Path) -> RunStore:
    store = RunStore(tmp_path / "reports" / "run")
    record = BuildRecord.from_json({"cell": "t/p", "verdict": "fail", "stage": "compile", "log": str(log)})
    store.save_build(record)
    return store


def test_a_link_planted_in_the_run_folder_is_replaced_not_written_through(tmp_path: Path) -> None:
    home = tmp_path / "cache" / "builds" / "k"
    home.mkdir(parents=True)
    (home / "build.log").write_text("the build's log\n")
    (home / "reproduce.sh").write_text("#!/bin/sh\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("must stay\n")
    store = _run_with_build(tmp_path, home / "build.log")
    (store.build_dir("t/p") / "build.log").symlink_to(victim)
    render_run(store.root)
    assert victim.read_text() == "must stay\n"
    copied = store.build_dir("t/p") / "build.log"
    assert not copied.is_symlink() and copied.read_text() == "the build's log\n"


def test_a_log_that_is_a_link_in_the_cache_is_not_copied(tmp_path: Path) -> None:
    home = tmp_path / "cache" / "builds" / "k"
    home.mkdir(parents=True)
    secret = tmp_path / "host-secret"
    secret.write_text("host secret\n")
    (home / "build.log").symlink_to(secret)
    store = _run_with_build(tmp_path, home / "build.log")
    summary = render_run(store.root)
    assert not (store.build_dir("t/p") / "build.log").exists()
    assert "host secret" not in summary.index.read_text()
    assert "host secret" not in json.dumps(json.loads(summary.results_json.read_text()))
