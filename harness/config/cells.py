"""Cells: the matrix expanded into build cells (tree x profile) and scenario cells (build x machine x
option set x scenario x accel, plus upgrades), with stable, readable ids; and the selection of cells by
fnmatch patterns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from harness.config.schema import (
    BUILTIN_MACHINES,
    BUILTIN_MIGRATIONS,
    PREBUILT,
    Machine,
    Matrix,
    MigrationSet,
    Profile,
    Rule,
    Tree,
)
from harness.errors import ConfigError
from harness.live.machine import MINIMAL
from harness.live.migration import DEFAULT as DEFAULT_MIGRATION
from harness.live.refusals import REFUSALS
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
    """One scenario (a mode, or a refusal scenario) on one accelerator, machine profile and migration
    option set, on a build (or on an upgrade: ``build`` -> ``target``). Ids:
    ``<build>[/<machine>][/<option set>]/<scenario>/<accel>``: the ``minimal`` machine and the ``default``
    option set add no part (the ids of earlier releases); ``upgrade/<name>/...`` likewise."""

    id: str  # a CellId
    build: BuildCell
    target: BuildCell | None
    scenario: str  # a Mode value, or a refusal scenario's name (harness.live.refusals)
    accel: Accel
    machine_name: str = MINIMAL
    machine: Machine = field(default=BUILTIN_MACHINES[MINIMAL], compare=False)
    migration_name: str = DEFAULT_MIGRATION
    migration: MigrationSet = field(default=BUILTIN_MIGRATIONS[DEFAULT_MIGRATION], compare=False)

    @property
    def mode(self) -> Mode:
        """The mode the cell runs (a refusal scenario: the mode it tries)."""
        refusal = REFUSALS.get(self.scenario)
        return refusal.mode if refusal else Mode(self.scenario)


def scenario_id(
    head: str, machine: str, scenario: str, accel: str, migration: str = DEFAULT_MIGRATION
) -> CellId:
    """The id of a scenario cell (see :class:`ScenarioCell`)."""
    extra = [machine] if machine != MINIMAL else []
    extra += [migration] if migration != DEFAULT_MIGRATION else []
    return CellId.of(head, *extra, scenario, accel)


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


def _matches(rule: Rule, values: dict[str, str]) -> bool:
    return all(fnmatchcase(values[k], pat) for k, pat in rule.model_dump(exclude_none=True).items())


def rule_builds(m: Matrix, rule: Rule) -> list[BuildCell]:
    return [
        b
        for b in build_cells(m)
        if fnmatchcase(b.tree_name, rule.tree or "*") and fnmatchcase(b.profile_name, rule.profile or "*")
    ]


def scenario_cells(m: Matrix) -> list[ScenarioCell]:
    """Build cells x machines x option sets x scenarios (modes, then refusals) x accels, minus exclude
    rules, plus include rules, then upgrades. Only migrating modes take an option set other than
    ``default``."""
    scenarios: list[str] = [*m.scenarios, *(s for s in Mode if s not in m.scenarios)]
    scenarios += [*m.refusals, *(r for r in REFUSALS if r not in m.refusals)]
    chosen = {*m.scenarios, *m.refusals}
    accels = m.accels + [a for a in Accel if a not in m.accels]
    cells = []
    for b in build_cells(m):
        for mach, profile in m.machines.items():
            for mig, options in m.migration.items():
                for s in scenarios:
                    if mig != DEFAULT_MIGRATION and (s not in tuple(Mode) or not Mode(s).migrates):
                        continue
                    for a in accels:
                        values = {"tree": b.tree_name, "profile": b.profile_name, "scenario": s, "accel": a}
                        values |= {"machine": mach, "migration": mig}
                        default = (
                            s in chosen and a in m.accels and not any(_matches(r, values) for r in m.exclude)
                        )
                        if default or any(_matches(r, values) for r in m.include):
                            cid = scenario_id(b.id, mach, s, a, mig)
                            cells.append(ScenarioCell(cid, b, None, s, a, mach, profile, mig, options))
    by_id = {b.id: b for b in build_cells(m)}
    for name, up in m.upgrades.items():
        for mach in up.machines or list(m.machines):
            for mig in up.migration or list(m.migration):
                for s in up.scenarios or [s for s in m.scenarios if s.migrates]:
                    for a in up.accels or m.accels:
                        cid = scenario_id(f"upgrade/{name}", mach, s, a, mig)
                        src, dst = by_id[up.source], by_id[up.target]
                        cells.append(
                            ScenarioCell(cid, src, dst, s, a, mach, m.machines[mach], mig, m.migration[mig])
                        )
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
