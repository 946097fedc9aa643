"""Merge the run folders of CI shards into one run folder (``report --merge DIR...``).

Each shard ran a slice of the matrix into its own ``reports/<run-id>/``; the merged folder gets every
shard's ``results/<cell>/`` (the result and its logs) and ``builds/<cell>/`` folders. A cell present in
several shards keeps the copy that finished last (a build that passed wins over one that did not, since
shards share build cells); each such collision is reported as a note. The merged folder is then rendered
like any run (:func:`harness.report.render_run`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.live.vocab import CellId
from harness.store.runs import BUILD_FILE, RESULT_FILE, RunStore


@dataclass
class MergeSummary:
    dest: Path
    scenarios: int = 0
    builds: int = 0
    notes: list[str] = field(default_factory=list)  # duplicate cells and which copy was kept


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rank(record: dict[str, Any], *, build: bool) -> tuple[bool, str]:
    """Higher wins: (for builds) passed, then the later ``finished_at`` (ISO 8601 sorts as text)."""
    return (build and record.get("verdict") == "pass", str(record.get("finished_at") or ""))


def _merge_kind(shards: list[Path], dest: Path, sub: str, filename: str, summary: MergeSummary) -> int:
    chosen: dict[str, Path] = {}
    for shard in shards:
        folder = shard / sub
        if not folder.is_dir():
            continue
        for cell in sorted(p for p in folder.iterdir() if p.is_dir()):
            previous = chosen.get(cell.name)
            if previous is None:
                chosen[cell.name] = cell
                continue
            build = sub == "builds"
            new, old = _read(cell / filename), _read(previous / filename)
            keep = cell if _rank(new, build=build) > _rank(old, build=build) else previous
            summary.notes.append(
                f"{sub[:-1]} {CellId.from_folder(cell.name)} is in {previous.parent.parent.name} "
                f"({old.get('verdict', '?')}) and {shard.name} ({new.get('verdict', '?')}): "
                f"kept {keep.parent.parent.name}"
            )
            chosen[cell.name] = keep
    for name, src in chosen.items():
        target = dest / sub / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(src, target, symlinks=False)
    return len(chosen)


def merge_runs(shards: list[Path], dest: Path) -> MergeSummary:
    """Copy the cells of every shard run folder into ``dest`` (created; its old cells are replaced).

    Raises ``ConfigError`` when a shard is not a run folder or ``dest`` is one of the shards.
    """
    shards = [Path(s).resolve() for s in shards]
    dest = Path(dest).resolve()
    if not shards:
        raise ConfigError(
            "--merge needs at least one run folder", hint="--merge reports/shard-1 reports/shard-2"
        )
    for shard in shards:
        if shard == dest:
            raise ConfigError(f"--merge {shard}: the merged folder cannot be one of the shards")
        if not (shard / "results").is_dir() and not (shard / "builds").is_dir():
            raise ConfigError(
                f"--merge {shard}: not a run folder (no results/ or builds/)",
                hint="pass folders produced by `python -m harness test`, e.g. reports/<run-id>",
            )
    store = RunStore(dest)
    store.root.mkdir(parents=True, exist_ok=True)
    summary = MergeSummary(dest)
    summary.scenarios = _merge_kind(shards, dest, "results", RESULT_FILE, summary)
    summary.builds = _merge_kind(shards, dest, "builds", BUILD_FILE, summary)
    store.write_summary()
    return summary
