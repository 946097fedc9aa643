"""Merge the run folders of CI shards into one run folder (``report --merge DIR...``).

Each shard ran a slice of the matrix into its own ``reports/<run-id>/``; the merged folder gets every
shard's ``results/<cell>/`` (the result and its logs) and ``builds/<cell>/`` folders. A cell present in
several shards keeps the copy that finished last (a build that passed wins over one that did not, since
shards share build cells); each such collision is reported as a note.

Shards are downloaded artifacts, so what they hold is data: folders and regular files are copied, never
through a link (a symlink or a device in a shard is left out and named in a note); a cell folder must be
a real folder with a cell's name. The merged ``plan.json`` is the union of the shards' plans plus the
cells the caller expects (``--matrix``): a planned cell that no shard holds -- a shard that never
arrived -- shows as ``not run``. The merged folder is then rendered like any run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.live.vocab import CellId
from harness.store.runs import BUILD_FILE, RESULT_FILE, Plan, RunStore
from harness.store.untrusted import copy_tree_untrusted, read_untrusted

RECORD_MAX_BYTES = 64 << 20
FILE_MAX_BYTES = 256 << 20


@dataclass
class MergeSummary:
    dest: Path
    scenarios: int = 0
    builds: int = 0
    notes: list[str] = field(default_factory=list)  # duplicate cells, refused entries, missing shards
    plan: Plan = field(default_factory=Plan)


def _read(folder: Path, filename: str) -> dict[str, Any]:
    try:
        data = json.loads(read_untrusted(folder, filename, RECORD_MAX_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rank(record: dict[str, Any], *, build: bool) -> tuple[bool, str]:
    """Higher wins: (for builds) passed, then the later ``finished_at`` (ISO 8601 sorts as text)."""
    return (build and record.get("verdict") == "pass", str(record.get("finished_at") or ""))


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _cell_folders(folder: Path, summary: MergeSummary) -> list[Path]:
    if not _real_folder(folder):
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        try:
            CellId.from_folder(entry.name)
        except ValueError:
            summary.notes.append(f"left out {entry}: not a cell folder name")
            continue
        if _real_folder(entry):
            found.append(entry)
        else:
            summary.notes.append(f"left out {entry}: a symlink or not a folder")
    return found


def _merge_kind(shards: list[Path], dest: Path, sub: str, filename: str, summary: MergeSummary) -> int:
    chosen: dict[str, Path] = {}
    for shard in shards:
        for cell in _cell_folders(shard / sub, summary):
            previous = chosen.get(cell.name)
            if previous is None:
                chosen[cell.name] = cell
                continue
            build = sub == "builds"
            new, old = _read(cell, filename), _read(previous, filename)
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
        refused = copy_tree_untrusted(src, target, FILE_MAX_BYTES)
        summary.notes += [f"left out {src}/{why}" for why in refused]
    return len(chosen)


def _shard_plan(store: RunStore) -> Plan:
    try:
        raw = read_untrusted(store.root, "plan.json", RECORD_MAX_BYTES)
        return Plan.from_json(json.loads(raw.decode("utf-8")))
    except FileNotFoundError:
        return Plan()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--merge {store.root}: plan.json is unreadable ({exc})",
            hint="pass the shard's run folder as written",
        ) from exc


def merge_runs(shards: list[Path], dest: Path, expected: Plan | None = None) -> MergeSummary:
    """Copy the cells of every shard run folder into ``dest`` (created; its old cells are replaced).

    ``expected``: cells the merged run must account for (a shard that never arrived); every shard's own
    plan counts too. Raises ``ConfigError`` when a shard is not a run folder or ``dest`` is one of them.
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
        if not (
            _real_folder(shard / "results")
            or _real_folder(shard / "builds")
            or (shard / "plan.json").is_file()
        ):
            raise ConfigError(
                f"--merge {shard}: not a run folder (no results/, builds/ or plan.json)",
                hint="pass folders produced by `python -m harness test`, e.g. reports/<run-id>",
            )
    store = RunStore(dest)
    store.root.mkdir(parents=True, exist_ok=True)
    summary = MergeSummary(dest)
    plan = Plan(commands=["merge"])
    for shard in shards:
        plan = plan.union(_shard_plan(RunStore(shard)))
    if expected is not None:
        plan = plan.union(expected)
    summary.scenarios = _merge_kind(shards, dest, "results", RESULT_FILE, summary)
    summary.builds = _merge_kind(shards, dest, "builds", BUILD_FILE, summary)
    stored = {str(CellId.from_folder(p.name)) for p in _cell_folders(dest / "results", summary)}
    missing = [c for c in plan.scenarios if c not in stored]
    if missing:
        summary.notes.append(f"{len(missing)} planned scenario cell(s) in no shard: shown as not run")
    store.write_plan(plan)
    summary.plan = plan
    store.write_summary(plan.scenarios)
    return summary
