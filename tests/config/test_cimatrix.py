"""CI sharding: the job matrix of each format on the real matrices, the committed workflow files (YAML,
schema), and sharded runs merged giving the same report as one local run (real QEMU, Docker)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, run_harness

from harness.config import cells as mx
from harness.config.cimatrix import FORMATS, ci_matrix, plan_shards
from harness.config.matrix import load_matrix
from harness.errors import ConfigError
from harness.report.merge import merge_runs
from harness.report.render import render_run

MATRICES = ["default", "smoke", "nightly"]
WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"
GITLAB = REPO / ".gitlab-ci.yml"
SAFE = re.compile(r"[A-Za-z0-9._+-]+")  # artifact, cache and file names


def _load(name: str) -> mx.Matrix:
    return load_matrix(REPO / "matrices" / f"{name}.yaml", repo_root=REPO)


def _emit(name: str, fmt: str, patterns: list[str] | None = None) -> tuple[mx.Matrix, list[str], str]:
    m = _load(name)
    builds, cells = mx.select(m, patterns)
    return m, [c.id for c in cells], ci_matrix(m, cells, builds, fmt)


def _selected(m: mx.Matrix, cells_arg: str) -> tuple[list[str], list[str]]:
    """What a shard runs: its ``cells`` string split as the workflows' shell does (``set -f``)."""
    builds, scens = mx.select(m, cells_arg.split())
    return [b.id for b in builds], [s.id for s in scens]


@pytest.mark.parametrize("name", MATRICES)
def test_github_matrix_runs_every_cell_exactly_once(name: str) -> None:
    m, every, text = _emit(name, "github")
    assert text.endswith("\n") and "\n" not in text[:-1]  # one line: `matrix=<json>` in $GITHUB_OUTPUT
    include = json.loads(text)["include"]
    assert include
    keys = [e["shard"] for e in include]
    assert len(set(keys)) == len(keys) and all(SAFE.fullmatch(k) for k in keys)
    ran: list[str] = []
    for e in include:
        assert set(e) == {"shard", "name", "cells", "builds", "scenarios", "image", "kvm", "matrix_file"}
        assert e["matrix_file"] == f"matrices/{name}.yaml"
        assert (REPO / "containers" / e["image"] / "Dockerfile").is_file()
        builds, scens = _selected(m, e["cells"])
        assert builds == e["builds"].split()
        assert len(scens) == e["scenarios"]
        assert e["kvm"] == any(s.endswith("/kvm") for s in scens)
        ran += scens
    assert sorted(ran) == sorted(every)
    assert {b for e in include for b in e["builds"].split()} == {b.id for b in mx.build_cells(m)}


def test_one_shard_per_build_cell_plus_one_per_upgrade() -> None:
    m = _load("nightly")
    shards = plan_shards(m, mx.scenario_cells(m), mx.build_cells(m))
    assert [s.name for s in shards] == [b.id for b in mx.build_cells(m)] + [
        f"upgrade/{n}" for n in m.upgrades
    ]
    lean = next(s for s in shards if s.name == "upstream-10.2/lean")
    assert lean.cells == ["upstream-10.2/lean/*"] and len(lean.scenario_cells) == 10
    up = next(s for s in shards if s.name == "upgrade/release-to-master")
    assert up.builds == ["upstream-10.2.0/lean", "upstream-master/lean"]  # matrix order
    assert up.cells == ["upgrade/release-to-master/*"]


def test_build_only_needed_by_an_upgrade_gets_no_shard_of_its_own() -> None:
    m = _load("default")  # debian-10.0 is excluded from scenarios: it is only the upgrade's source
    shards = plan_shards(m, mx.scenario_cells(m), mx.build_cells(m))
    assert [s.name for s in shards] == ["upstream-10.2/lean", "upgrade/debian-10.0-to-upstream-10.2"]
    assert shards[1].builds == ["upstream-10.2/lean", "debian-10.0/prebuilt"]  # matrix order
    assert shards[1].image == "qemu-trixie"  # run_image: the target's image derives from it


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        # a subset of a build's cells: ids one by one, so that the shard does not run more
        (["*/cpr-exec/tcg"], {"debian-10.0/prebuilt": 1, "debian-11.1/prebuilt": 1}),
        (["debian-11.1/prebuilt"], {"debian-11.1/prebuilt": 0}),  # build-only shard
        (["debian-11.1/*"], {"debian-11.1/prebuilt": 5}),
    ],
)
def test_subsets_stay_subsets(patterns: list[str], expected: dict[str, int]) -> None:
    m, every, text = _emit("smoke", "github", patterns)
    include = json.loads(text)["include"]
    assert {e["name"]: e["scenarios"] for e in include} == expected
    ran = [c for e in include for c in _selected(m, e["cells"])[1]]
    assert sorted(ran) == sorted(every)
    if patterns == ["*/cpr-exec/tcg"]:
        assert include[0]["cells"] == "debian-10.0/prebuilt/cpr-exec/tcg"
    if patterns == ["debian-11.1/prebuilt"]:
        assert include[0]["cells"] == "debian-11.1/prebuilt"


def test_upgrade_selection_builds_both_sides_in_one_shard() -> None:
    m, _, text = _emit("nightly", "json", ["upgrade/*"])
    shards = json.loads(text)
    assert [s["name"] for s in shards] == ["upgrade/release-to-master", "upgrade/openeuler-6.2-to-8.2"]
    assert shards[1]["scenario_cells"] == [
        "upgrade/openeuler-6.2-to-8.2/normal/tcg",
        "upgrade/openeuler-6.2-to-8.2/normal/kvm",
    ]


@pytest.mark.parametrize("name", MATRICES)
def test_json_is_the_shard_list(name: str) -> None:
    m, every, text = _emit(name, "json")
    shards = json.loads(text)
    assert isinstance(shards, list)
    assert sorted(c for s in shards for c in s["scenario_cells"]) == sorted(every)
    for s in shards:
        assert _selected(m, " ".join(s["cells"])) == (s["builds"], s["scenario_cells"])
        assert s["matrix_file"] == f"matrices/{name}.yaml"


@pytest.mark.parametrize("name", MATRICES)
def test_gitlab_child_pipeline(name: str, tmp_path: Path) -> None:
    m, every, text = _emit(name, "gitlab")
    doc = yaml.safe_load(text)
    assert doc["stages"] == ["shard", "report"]
    template = doc[".shard"]
    assert template["artifacts"]["expire_in"] and template["artifacts"]["when"] == "always"
    assert template["artifacts"]["paths"] == ["reports/$CPR_RUN_ID/"]
    assert {"key": "cpr-ccache-$CPR_SHARD", "paths": [".cache/ccache/"]} in template["cache"]
    assert "nox -s build test -- " in template["script"][0] and "set -f" in template["script"][0]
    jobs = {k: v for k, v in doc.items() if k.startswith("shard ")}
    ran: list[str] = []
    for job in jobs.values():
        assert job["extends"] == ".shard"
        env = job["variables"]
        assert SAFE.fullmatch(env["CPR_SHARD"]) and env["CPR_RUN_ID"] == f"$CI_PIPELINE_ID-{env['CPR_SHARD']}"
        ran += _selected(m, env["CPR_CELLS"])[1]
    assert sorted(ran) == sorted(every)
    report = doc["report"]
    assert {n["job"] for n in report["needs"]} == set(jobs)
    assert any("--merge" in line and '--matrix "$CPR_MATRIX" --cells' in line for line in report["script"])
    assert report["artifacts"]["expire_in"] and report["artifacts"]["reports"]["junit"]
    child = tmp_path / "child-pipeline.yml"
    child.write_text(text)
    _schema_check("vendor.gitlab-ci", child)


def test_unknown_format_is_a_user_error() -> None:
    m = _load("smoke")
    builds, cells = mx.select(m, None)
    with pytest.raises(ConfigError, match="unknown --format"):
        ci_matrix(m, cells, builds, "jenkins")
    assert FORMATS == ("github", "gitlab", "json")


# ---- the committed workflow files


def _schema_check(schema: str, path: Path) -> None:
    """check-jsonschema with its vendored schema store (works offline)."""
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("check-jsonschema is missing: pip install -e '.[test]'")
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in job["steps"])


def test_github_workflow() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    assert on["schedule"][0]["cron"] and "workflow_dispatch" in on
    plan, cells, report = (doc["jobs"][k] for k in ("plan", "cells", "report"))
    assert "nox -s matrix -- --format github" in _steps_text(plan)
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert cells["strategy"] == {"fail-fast": False, "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}"}
    text = _steps_text(cells)
    assert "sudo" in text and "-s provision" in text
    assert "nox -s build test -- " in text and "--cells $CELLS" in text
    uses = [s.get("uses", "") for s in cells["steps"]]
    assert any(u.startswith("actions/cache/restore@") for u in uses)
    cached = {s["with"]["path"] for s in cells["steps"] if "actions/cache" in s.get("uses", "")}
    assert {".cache/ccache", "~/.cache/pip", ".cache/images"} <= cached
    upload = next(s for s in cells["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["retention-days"] and upload["if"] == "always()"
    assert upload["with"]["name"] == "reports-${{ matrix.shard }}"
    assert report["needs"] == ["plan", "cells"]
    assert 'nox -s report -- --merge "${shards[@]}" --matrix "$MATRIX_FILE"' in _steps_text(report)
    assert any(s.get("uses", "").startswith("actions/download-artifact@") for s in report["steps"])
    assert all("timeout-minutes" in job for job in doc["jobs"].values())
    _schema_check("vendor.github-workflows", WORKFLOW)


def test_gitlab_ci() -> None:
    doc = yaml.safe_load(GITLAB.read_text())
    assert {r["if"] for r in doc["workflow"]["rules"]} >= {'$CI_PIPELINE_SOURCE == "schedule"'}
    plan = doc["plan"]
    assert any("nox -s matrix -- --format gitlab" in line for line in plan["script"])
    assert plan["artifacts"]["paths"] == ["child-pipeline.yml"] and plan["artifacts"]["expire_in"]
    trigger = doc["nightly"]["trigger"]
    assert trigger["include"] == [{"artifact": "child-pipeline.yml", "job": "plan"}]
    assert trigger["strategy"] == "depend"
    _schema_check("vendor.gitlab-ci", GITLAB)


# ---- sharded runs merged == one local run (real QEMU)

SMOKE = "matrices/smoke.yaml"
CELLS = [
    "debian-11.1/prebuilt/normal/tcg",
    "debian-11.1/prebuilt/boot/tcg",
    "debian-10.0/prebuilt/cpr-exec/tcg",
]


def _test_run(reports: Path, run_id: str, cells: list[str], cache: Path) -> Path:
    done = run_harness(
        "test", "--matrix", SMOKE, "--cells", *cells, "--reports", str(reports), "--run-id", run_id,
        "--cache", str(cache), timeout=600,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return reports / run_id


def _essence(run_dir: Path) -> dict[str, Any]:
    """What must agree between two reports of the same cells: no timings, run ids or timestamps."""
    summary = json.loads((run_dir / "summary.json").read_text())
    results = json.loads((run_dir / "results.json").read_text())
    scenarios = {
        r["cell_id"]: {
            "verdict": r["verdict"],
            "checks": [(c["name"], c["verdict"]) for c in r["checks"]],
            "reason": (r.get("reason") or "").splitlines()[:1],  # e.g. QEMU's own text for unsupported
        }
        for r in results["scenarios"]
    }
    builds = {k: b.get("verdict") for k, b in results["builds"].items()}
    root = ET.parse(run_dir / "junit.xml").getroot()
    suites = root.iter("testsuite")
    junit = {
        s.get("name"): {
            "counts": {k: s.get(k) for k in ("tests", "failures", "errors", "skipped")},
            "cases": sorted(
                (c.get("classname"), c.get("name"), tuple(sorted(x.tag for x in c if x.tag != "system-out")))
                for c in s.iter("testcase")
            ),
        }
        for s in suites
    }
    pages = sorted(p.name for p in (run_dir / "cells").glob("*.html"))
    return {
        "summary": summary,
        "totals": (results["totals"], results["build_totals"]),
        "scenarios": scenarios,
        "builds": builds,
        "junit": junit,
        "pages": pages,
    }


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    return _test_run(tmp_path_factory.mktemp("local"), "local", CELLS, cache_dir)


def _shard_sets(how: str) -> list[list[str]]:
    if how == "one-cell-each":
        return [[c] for c in CELLS]
    m = _load("smoke")
    builds, cells = mx.select(m, CELLS)
    return [s["cells"] for s in json.loads(ci_matrix(m, cells, builds, "json"))]


@pytest.mark.docker
@pytest.mark.qemu
@pytest.mark.parametrize("how", ["one-cell-each", "ci-plan"])
def test_sharded_runs_merged_equal_one_local_run(
    how: str, local_run: Path, tmp_path: Path, cache_dir: Path
) -> None:
    sets = _shard_sets(how)
    if how == "ci-plan":  # one shard per build cell; cells picked one by one (a subset of each build)
        assert sets == [["debian-10.0/prebuilt/cpr-exec/tcg"], [CELLS[1], CELLS[0]]]  # matrix order
    shards = [_test_run(tmp_path / "shards", f"shard-{n}", cells, cache_dir) for n, cells in enumerate(sets)]
    merged = merge_runs(shards, tmp_path / "merged" / "run")
    assert merged.scenarios == len(CELLS) and merged.builds == 2
    duplicated = 1 if how == "one-cell-each" else 0  # debian-11.1/prebuilt is in two shards
    assert len(merged.notes) == duplicated
    rendered = render_run(merged.dest)
    local = _essence(local_run)
    assert set(local["summary"]) == set(CELLS)
    assert local["summary"]["debian-10.0/prebuilt/cpr-exec/tcg"] == "unsupported"  # 10.0 has no cpr-exec
    assert _essence(merged.dest) == local
    assert rendered.totals == local["totals"][0]
