"""The selected cells as a CI system's own job matrix (``python -m harness matrix --format ...``).

**One CI job (a shard) per build cell**, running every selected scenario cell of that build; plus one
shard per upgrade, running its upgrade cells. Why not one job per scenario cell: the build is the
expensive part (minutes to an hour of compiling, against seconds per scenario cell), every scenario cell
of a build needs that build, and CI jobs do not share a disk. One job per scenario cell would build each
tree 5-10 times over (or need a build job plus artifact hand-over of binaries and images), and spend more
on runner start-up and provisioning than on the scenarios. Inside a shard, ``--jobs`` still runs the
scenario cells in parallel.

Upgrade cells need two builds (source and target). They get a shard of their own per upgrade, which
builds both; those builds run in parallel with the build cells' own shards, so the critical path stays
one build long. A build cell with no scenario cells of its own that some upgrade shard already builds
gets no shard; any other one gets a build-only shard. ``report --merge`` keeps the passing copy of a
build cell present in several shards.

Each shard selects its cells with ``--cells`` patterns that select exactly its cells: ``<build>/*`` (or
``upgrade/<name>/*``) when it runs every scenario cell of the build (or upgrade), otherwise the cell ids
one by one (a ``--cells`` subset given to ``matrix`` stays a subset in every shard); a build-only shard
gives the build id. :func:`plan_shards` checks this with :func:`harness.matrix.select` itself.

Formats:

``github``  one line of JSON for ``strategy.matrix``: ``{"include": [{"shard", "name", "cells", ...}]}``
            (see .github/workflows/nightly.yml);
``gitlab``  a child-pipeline YAML: one job per shard (cache of ``.cache/ccache``, ``reports/<run>``
            artifacts with ``expire_in``) and a ``report`` job that ``needs`` every shard and merges them
            (see .gitlab-ci.yml);
``json``    the shard list, indented, for scripts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import cells as mx
from harness.config import images
from harness.config.schema import Matrix
from harness.errors import ConfigError
from harness.live.vocab import Accel, CellId

FORMATS = ("github", "gitlab", "json")
GITHUB_MAX_JOBS = 256  # GitHub Actions: a matrix may generate at most 256 jobs per workflow run
GITLAB_MAX_NEEDS = 50  # GitLab's default limit of ``needs`` entries per job
NOX = "'nox>=2026.10.20'"
ARTIFACT_EXPIRE = "2 weeks"
REPORT_EXPIRE = "90 days"


@dataclass(frozen=True)
class Shard:
    """One CI job: the cells it runs and what it needs."""

    key: str  # safe in artifact, cache and file names: ``upstream-10.2__lean``, ``upgrade__x``
    name: str  # shown as the job name: ``upstream-10.2/lean``, ``upgrade/x``
    cells: list[str]  # --cells arguments selecting exactly this shard's cells
    builds: list[str]  # build cells the shard builds
    scenario_cells: list[str]  # scenario cells the shard runs (may be empty: a build-only shard)
    image: str  # the container image the shard's scenario cells run in
    accels: list[str] = field(default_factory=list)


def _matrix_arg(m: Matrix) -> str:
    """The matrix file as a path relative to the repository (CI checkouts live in different folders)."""
    path = Path(m.path).resolve()
    try:
        return path.relative_to(Path(m.repo_root).resolve()).as_posix()
    except ValueError:
        return str(m.path)


def _accels(cells: list[mx.ScenarioCell]) -> list[str]:
    return [str(a) for a in Accel if any(c.accel == a for c in cells)]


def plan_shards(m: Matrix, cells: list[mx.ScenarioCell], builds: list[mx.BuildCell]) -> list[Shard]:
    """Group a selection (as returned by :func:`harness.matrix.select`) into shards, in matrix order.

    Raises ``AssertionError`` if a shard's ``--cells`` would not select exactly its cells (a bug)."""
    every = mx.scenario_cells(m)
    upgrade_cells: dict[str, list[mx.ScenarioCell]] = {}
    for c in cells:
        if c.target is not None:
            upgrade_cells.setdefault(c.id.split("/")[1], []).append(c)
    built_by_upgrades = {
        b.id for group in upgrade_cells.values() for c in group for b in (c.build, c.target) if b is not None
    }
    shards: list[Shard] = []
    for b in builds:
        own = [c for c in cells if c.target is None and c.build.id == b.id]
        if not own and b.id in built_by_upgrades:
            continue
        whole = {c.id for c in every if c.target is None and c.build.id == b.id}
        if not own:
            patterns = [b.id]
        elif {c.id for c in own} == whole:
            patterns = [f"{b.id}/*"]
        else:
            patterns = [c.id for c in own]
        shards.append(
            Shard(
                key=CellId(b.id).folder(),
                name=b.id,
                cells=patterns,
                builds=[b.id],
                scenario_cells=[c.id for c in own],
                image=b.tree.image,
                accels=_accels(own),
            )
        )
    for name, group in upgrade_cells.items():
        whole = {c.id for c in every if c.id.startswith(f"upgrade/{name}/")}
        first = group[0]
        assert first.target is not None
        image = images.run_image(m.repo_root / "containers", first.build.tree.image, first.target.tree.image)
        shards.append(
            Shard(
                key=CellId.of("upgrade", name).folder(),
                name=f"upgrade/{name}",
                cells=[f"upgrade/{name}/*"] if {c.id for c in group} == whole else [c.id for c in group],
                builds=[b.id for b in mx.build_cells(m) if b.id in (first.build.id, first.target.id)],
                scenario_cells=[c.id for c in group],
                image=image or first.target.tree.image,
                accels=_accels(group),
            )
        )
    _check(m, shards, cells, builds)
    return shards


def _check(m: Matrix, shards: list[Shard], cells: list[mx.ScenarioCell], builds: list[mx.BuildCell]) -> None:
    """Every shard's patterns select exactly its cells; together the shards run the whole selection."""
    for s in shards:
        got_b, got_s = mx.select(m, s.cells)
        assert [c.id for c in got_s] == s.scenario_cells, (s.name, s.cells)
        assert [b.id for b in got_b] == s.builds, (s.name, s.builds)
    ran = [c for s in shards for c in s.scenario_cells]
    assert sorted(ran) == sorted(c.id for c in cells), "shards must run each selected cell exactly once"
    assert {b for s in shards for b in s.builds} == {b.id for b in builds}


def ci_matrix(m: Matrix, cells: list[mx.ScenarioCell], builds: list[mx.BuildCell], fmt: str) -> str:
    """The selection as text in format ``fmt`` (one of :data:`FORMATS`); ends with a newline.

    Raises ``ConfigError`` for an unknown format or a selection GitHub cannot run in one workflow."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    shards = plan_shards(m, cells, builds)
    matrix_arg = _matrix_arg(m)
    if fmt == "json":
        return json.dumps([asdict(s) | {"matrix_file": matrix_arg} for s in shards], indent=2) + "\n"
    if fmt == "github":
        if len(shards) > GITHUB_MAX_JOBS:
            raise ConfigError(
                f"{len(shards)} shards: GitHub Actions runs at most {GITHUB_MAX_JOBS} jobs per matrix",
                hint="split the matrix file, or run two workflows with --cells subsets",
            )
        return json.dumps({"include": [_github_entry(s, matrix_arg) for s in shards]}) + "\n"
    return gitlab_pipeline(shards, matrix_arg)


def _github_entry(s: Shard, matrix_arg: str) -> dict[str, Any]:
    return {
        "shard": s.key,
        "name": s.name,
        "cells": " ".join(s.cells),
        "builds": " ".join(s.builds),
        "scenarios": len(s.scenario_cells),
        "image": s.image,
        "kvm": "kvm" in s.accels,
        "matrix_file": matrix_arg,
    }


def _job_name(s: Shard) -> str:
    return f"shard {s.name}"


def gitlab_pipeline(shards: list[Shard], matrix_arg: str) -> str:
    """The child pipeline: one job per shard, then ``report`` merging their run folders."""
    setup = [
        "python3 -m venv .cache/venv-ci",
        ". .cache/venv-ci/bin/activate",
        f"python -m pip install -q {NOX}",
    ]
    doc: dict[str, Any] = {
        "stages": ["shard", "report"],
        "variables": {
            "CPR_MATRIX": matrix_arg,
            "CPR_RUNNER_TAG": "cpr-harness",
            "PIP_CACHE_DIR": "$CI_PROJECT_DIR/.cache/pip",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
        ".shard": {
            "stage": "shard",
            "tags": ["$CPR_RUNNER_TAG"],
            "timeout": "5h",
            "interruptible": True,
            "before_script": [*setup, "nox -s provision"],
            # set -f: the --cells patterns reach the harness as written, never expanded by the shell
            "script": ['set -f; nox -s build test -- --matrix "$CPR_MATRIX" --cells $CPR_CELLS'],
            "cache": [
                {"key": "cpr-ccache-$CPR_SHARD", "paths": [".cache/ccache/"]},
                {"key": "cpr-downloads", "paths": [".cache/downloads/"]},
                {"key": "cpr-pip", "paths": [".cache/pip/"], "policy": "pull"},
            ],
            "artifacts": {
                "when": "always",
                "expire_in": ARTIFACT_EXPIRE,
                "paths": ["reports/$CPR_RUN_ID/"],
            },
        },
    }
    for s in shards:
        doc[_job_name(s)] = {
            "extends": ".shard",
            "variables": {
                "CPR_SHARD": s.key,
                "CPR_CELLS": " ".join(s.cells),
                "CPR_RUN_ID": f"$CI_PIPELINE_ID-{s.key}",
            },
        }
    report: dict[str, Any] = {
        "stage": "report",
        "tags": ["$CPR_RUNNER_TAG"],
        "when": "always",
        "cache": [{"key": "cpr-pip", "paths": [".cache/pip/"]}],
        "script": [
            *setup,
            # --matrix/--cells: a shard that never arrived shows its cells as not run (set -f: as written)
            'shards=$(echo reports/"$CI_PIPELINE_ID"-*); set -f',
            'nox -s report -- --merge $shards --matrix "$CPR_MATRIX"'
            f" --cells {' '.join(c for s in shards for c in s.cells)} || status=$?",
            'mkdir -p report && cp -rL "$(readlink -f reports/latest)"/. report/',
            'exit "${status:-0}"',
        ],
        "artifacts": {
            "when": "always",
            "expire_in": REPORT_EXPIRE,
            "expose_as": "nightly report",
            "paths": ["report/"],
            "reports": {"junit": "report/junit.xml"},
        },
    }
    if len(shards) <= GITLAB_MAX_NEEDS:
        # start as soon as the shards end; without ``needs`` the stage order gives the same artifacts
        report["needs"] = [{"job": _job_name(s), "artifacts": True} for s in shards]
    doc["report"] = report
    head = (
        f"# Generated by `nox -s matrix -- --format gitlab` from {matrix_arg}: {len(shards)} shard(s).\n"
        "# Child pipeline of .gitlab-ci.yml; do not edit (see harness/cimatrix.py).\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, width=200)
