"""Cells: the matrix expanded into build cells (tree x profile) and scenario cells (build x scenario x
accel, plus upgrades), with stable, readable ids; and the selection of cells by fnmatch patterns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from harness.config.schema import BUILTIN_MACHINES, PREBUILT, Machine, Matrix, Profile, Rule, Tree
from harness.errors import ConfigError
from harness.live.machine import MINIMAL
from harness.live.vocab import Accel, CellId, Mode


@dataclass(frozen=True)
class BuildCell:
    """One tree built with one profile (prebuilt trees: profile ``prebuilt``)."""

    id: str  # a CellId
    tree_name: str
    tree: Tree = field(compare=False)
    profile_name: str
    profile: Profile | None = field(compare=False)


@dataclass(frozen=True)
class ScenarioCell:
    """One scenario on one accelerator and machine profile, on a build (or on an upgrade: ``build`` ->
    ``target``). Ids: ``<build>/<scenario>/<accel>`` on the ``minimal`` machine (the ids of earlier
    releases), ``<build>/<machine>/<scenario>/<accel>`` on any other (``upgrade/<name>/...`` likewise)."""

    id: str  # a CellId
    build: BuildCell
    target: BuildCell | None
    scenario: Mode
    accel: Accel
    machine_name: str = MINIMAL
    machine: Machine = field(default=BUILTIN_MACHINES[MINIMAL], compare=False)


def scenario_id(head: str, machine: str, scenario: str, accel: str) -> CellId:
    """The id of a scenario cell (see :class:`ScenarioCell`)."""
    return (
        CellId.of(head, scenario, accel) if machine == MINIMAL else CellId.of(head, machine, scenario, accel)
    )


def build_cells(m: Matrix) -> list[BuildCell]:
    """Trees in file order: each profile a built tree admits; prebuilt trees get profile 'prebuilt'."""
    cells = []
    for name, t in m.trees.items():
        if t.kind == "prebuilt":
            cells.append(BuildCell(CellId.of(name, PREBUILT), name, t, PREBUILT, None))
            continue
        for p in t.profiles if t.profiles is not None else list(m.profiles):
            cells.append(BuildCell(CellId.of(name, p), name, t, p, m.profiles[p]))
    return cells


def _matches(rule: Rule, tree: str, profile: str, scenario: str, accel: str, machine: str) -> bool:
    values = {"tree": tree, "profile": profile, "scenario": scenario, "accel": accel, "machine": machine}
    return all(fnmatchcase(values[k], pat) for k, pat in rule.model_dump(exclude_none=True).items())


def rule_builds(m: Matrix, rule: Rule) -> list[BuildCell]:
    return [
        b
        for b in build_cells(m)
        if fnmatchcase(b.tree_name, rule.tree or "*") and fnmatchcase(b.profile_name, rule.profile or "*")
    ]


def scenario_cells(m: Matrix) -> list[ScenarioCell]:
    """Build cells x machines x scenarios x accels, minus exclude rules, plus include rules, then upgrades."""
    scenarios = m.scenarios + [s for s in Mode if s not in m.scenarios]
    accels = m.accels + [a for a in Accel if a not in m.accels]
    cells = []
    for b in build_cells(m):
        for mach, profile in m.machines.items():
            for s in scenarios:
                for a in accels:
                    args = (b.tree_name, b.profile_name, s, a, mach)
                    default = (
                        s in m.scenarios and a in m.accels and not any(_matches(r, *args) for r in m.exclude)
                    )
                    if default or any(_matches(r, *args) for r in m.include):
                        cid = scenario_id(b.id, mach, s, a)
                        cells.append(ScenarioCell(cid, b, None, s, a, mach, profile))
    by_id = {b.id: b for b in build_cells(m)}
    for name, up in m.upgrades.items():
        for mach in up.machines or list(m.machines):
            for s in up.scenarios or [s for s in m.scenarios if s.migrates]:
                for a in up.accels or m.accels:
                    cid = scenario_id(f"upgrade/{name}", mach, s, a)
                    src, dst = by_id[up.source], by_id[up.target]
                    cells.append(ScenarioCell(cid, src, dst, s, a, mach, m.machines[mach]))
    return cells


def select(m: Matrix, patterns: Iterable[str] | None) -> tuple[list[BuildCell], list[ScenarioCell]]:
    """Cells whose id matches any fnmatch pattern, plus the build cells selected scenario cells need.

    Patterns match whole ids of both kinds: ``upstream-10.2/*``, ``*/cpr-exec/*``, ``upstream-10.2/lean``.
    No patterns selects everything. A pattern matching nothing raises ConfigError listing the ids.
    """
    builds, scens = build_cells(m), scenario_cells(m)
    patterns = list(patterns or [])
    if not patterns:
        return builds, scens
    ids = [b.id for b in builds] + [s.id for s in scens]
    unmatched = [p for p in patterns if not any(fnmatchcase(i, p) for i in ids)]
    if unmatched:
        shown = ids if len(ids) <= 30 else [*ids[:25], f"... ({len(ids) - 25} more)"]
        hint = "patterns match whole ids (fnmatch: * ? [...]); available: " + ", ".join(shown)
        near = [f"{p}/*" for p in unmatched if any(fnmatchcase(i, f"{p}/*") for i in ids)]
        if near:
            hint = f"did you mean {', '.join(near)}? " + hint
        raise ConfigError(
            f"{display_path(m.path)}: selection {', '.join(map(repr, unmatched))} matches no cell", hint=hint
        )
    chosen_s = [s for s in scens if any(fnmatchcase(s.id, p) for p in patterns)]
    needed = {b.id for s in chosen_s for b in (s.build, s.target) if b is not None}
    chosen_b = [b for b in builds if b.id in needed or any(fnmatchcase(b.id, p) for p in patterns)]
    return chosen_b, chosen_s


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it (for messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
