"""The test matrix: which QEMU trees to build, with which configure profiles, and which scenarios to run.

``load_matrix`` reads a YAML file (schema: docs/matrix.md), validates it and reports every problem in one
:class:`ConfigError` whose lines read ``file:line: dotted.key: problem``. ``build_cells`` and
``scenario_cells`` expand it into stable, readable ids; ``select`` filters them with fnmatch patterns.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import yamlpos
from harness.errors import ConfigError
from harness.yamlpos import Problems, YamlPath

TreeKind = Literal["tarball", "git", "debian-source", "local", "prebuilt"]
Scenario = Literal["boot", "normal", "cpr-reboot", "cpr-transfer", "cpr-exec"]
Accel = Literal["tcg", "kvm"]
SCENARIOS: tuple[str, ...] = typing.get_args(Scenario)
ACCELS: tuple[str, ...] = typing.get_args(Accel)
PREBUILT = "prebuilt"  # profile name of prebuilt trees' build cells
NAME_RE = re.compile(r"[A-Za-z0-9._+-]+")
_COMMON = {"kind", "image", "description"}
# kind -> (required fields, other allowed fields); anything else set on the tree is an error
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tarball": (("url", "sha256"), ("patches", "profiles")),
    "git": (("url", "ref"), ("submodules", "patches", "profiles")),
    "debian-source": (("version",), ("package", "patches", "profiles")),
    "local": (("path",), ("patches", "profiles")),
    "prebuilt": (("binary",), ()),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tree(_Model):
    kind: TreeKind
    image: str
    description: str = ""
    url: str | None = None
    sha256: str | None = None
    ref: str | None = None
    submodules: bool = True
    package: str | None = None
    version: str | None = None
    path: str | None = None
    binary: str | None = None
    patches: str | None = None
    profiles: list[str] | None = None


class Profile(_Model):
    description: str = ""
    configure: list[str] = []
    targets: list[str] = []


class Rule(_Model):
    tree: str | None = None
    profile: str | None = None
    scenario: str | None = None
    accel: str | None = None


class Upgrade(_Model):
    source: str
    target: str
    scenarios: list[Scenario] | None = None
    accels: list[Accel] | None = None


class Settings(_Model):
    guest_ram_mb: int = Field(256, ge=16)
    step_timeout_s: float = Field(60, gt=0)
    build_jobs: int | None = Field(None, ge=1)


class MatrixFile(_Model):
    """The YAML document as written (before cross-checks)."""

    description: str = ""
    trees: dict[str, Tree]
    profiles: dict[str, Profile] = {}
    scenarios: list[Scenario] = list(SCENARIOS)
    accels: list[Accel] = ["tcg"]
    include: list[Rule] = []
    exclude: list[Rule] = []
    upgrades: dict[str, Upgrade] = {}
    settings: Settings = Settings()


@dataclass(frozen=True)
class Matrix:
    path: Path
    repo_root: Path
    description: str
    trees: dict[str, Tree]
    profiles: dict[str, Profile]
    scenarios: list[str]
    accels: list[str]
    include: list[Rule]
    exclude: list[Rule]
    upgrades: dict[str, Upgrade]
    settings: Settings


@dataclass(frozen=True)
class BuildCell:
    id: str
    tree_name: str
    tree: Tree = field(compare=False)
    profile_name: str
    profile: Profile | None = field(compare=False)


@dataclass(frozen=True)
class ScenarioCell:
    id: str
    build: BuildCell
    target: BuildCell | None
    scenario: str
    accel: str


def load_matrix(path: Path, repo_root: Path | None = None) -> Matrix:
    """Read, validate and cross-check a matrix file. Raises one ConfigError listing every problem."""
    path = Path(path)
    shown = _display(path)
    if not path.is_file():
        raise ConfigError(
            f"{shown}: matrix file not found", hint="pass an existing file, e.g. matrices/default.yaml"
        )
    if repo_root is None:
        parent = path.resolve().parent
        repo_root = parent.parent if parent.name == "matrices" else parent
    data, lines = yamlpos.load(path.read_text(encoding="utf-8"), shown)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}:1: the file must be a mapping with at least a 'trees' key",
            hint="see docs/matrix.md for the schema",
        )
    problems = Problems()
    mf = _validate(data, problems)
    if mf is None:
        raise yamlpos.config_error(shown, lines, problems)
    # names as written, including entries dropped by _validate, so that they are not reported as unknown
    known = {k: list(v) if isinstance(v := data.get(k), dict) else [] for k in ("trees", "profiles")}
    trees = _check_trees(mf, Path(repo_root), path.resolve().parent, known["profiles"], problems)
    _check_names(mf, known, problems)
    fields = {k: getattr(mf, k) for k in MatrixFile.model_fields} | {"trees": trees}
    m = Matrix(path=path, repo_root=Path(repo_root), **fields)
    if not problems:
        _check_rules(m, problems)
        _check_upgrades(m, problems)
    if problems:
        raise yamlpos.config_error(shown, lines, problems)
    return m


def _validate(data: dict[str, Any], problems: Problems) -> MatrixFile | None:
    """Validate the structure. On errors, record them and retry without the offending entries (a tree,
    profile, rule, upgrade or top-level value), so that cross-checks still run on the rest."""
    try:
        return MatrixFile.model_validate(data)
    except ValidationError as exc:
        found = yamlpos.pydantic_problems(exc, MatrixFile)
    problems.extend(found)
    salvaged = {
        k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
        for k, v in data.items()
    }
    for loc, _, _ in found:
        section = salvaged.get(str(loc[0]))
        if len(loc) >= 2 and isinstance(section, dict) and loc[0] in ("trees", "profiles", "upgrades"):
            section.pop(str(loc[1]), None)
        elif len(loc) >= 2 and isinstance(section, list) and loc[0] in ("include", "exclude"):
            section[int(loc[1])] = None
        else:
            salvaged.pop(str(loc[0]), None)
    for key in ("include", "exclude"):
        if isinstance(salvaged.get(key), list):
            salvaged[key] = [r for r in salvaged[key] if r is not None]
    try:
        return MatrixFile.model_validate(salvaged)
    except ValidationError:
        return None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_trees(
    mf: MatrixFile, root: Path, base: Path, profile_names: list[str], problems: Problems
) -> dict[str, Tree]:
    images = sorted(p.parent.name for p in (root / "containers").glob("*/Dockerfile"))
    patch_dirs = sorted(p.name for p in (root / "patches").glob("*") if p.is_dir())
    out: dict[str, Tree] = {}
    for name, t in mf.trees.items():
        at: YamlPath = ("trees", name)
        add = problems.under(at)
        required, optional = KIND_FIELDS[t.kind]
        for f in required:
            if getattr(t, f) in (None, ""):
                add((f,), f"required for kind '{t.kind}'", f"add '{f}:' to tree '{name}'")
        for f in sorted(t.model_fields_set - _COMMON - set(required) - set(optional)):
            kinds = ", ".join(k for k, (r, o) in KIND_FIELDS.items() if f in r + o)
            add((f,), f"not used by kind '{t.kind}'", f"remove it (it belongs to kind {kinds})")
        if t.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", t.sha256):
            add(("sha256",), "must be 64 hex digits", "use the hex digest printed by `sha256sum <tarball>`")
        if t.kind == "tarball" and t.url and not re.match(r"(https?|file)://", t.url):
            add(("url",), "must be an http(s):// or file:// URL")
        if t.binary is not None and not t.binary.startswith("/"):
            add(("binary",), "must be an absolute path inside the image")
        if t.path is not None and not (base / t.path).is_dir():
            add(("path",), f"directory not found: {base / t.path}", "relative paths start at the matrix file")
        if t.image not in images:
            hint = f"known images: {', '.join(images) or 'none'}"
            add(("image",), f"unknown image '{t.image}' (no containers/{t.image}/Dockerfile)", hint)
        if t.patches is not None and t.patches not in patch_dirs:
            hint = f"known patch folders: {', '.join(patch_dirs) or 'none'}"
            add(("patches",), f"no folder patches/{t.patches}/ under {root}", hint)
        for i, p in enumerate(t.profiles or []):
            if p not in profile_names:
                add(("profiles", i), f"unknown profile '{p}'", f"known profiles: {', '.join(profile_names)}")
        if t.kind == "debian-source" and t.package is None:
            t = t.model_copy(update={"package": "qemu"})
        if t.sha256 is not None and t.sha256 != t.sha256.lower():
            t = t.model_copy(update={"sha256": t.sha256.lower()})
        out[name] = t
    return out


def _check_names(mf: MatrixFile, known: dict[str, list[str]], problems: Problems) -> None:
    for section, names in (("trees", mf.trees), ("profiles", mf.profiles), ("upgrades", mf.upgrades)):
        for n in names:
            if not NAME_RE.fullmatch(n):
                problems.add((section, n), f"invalid name '{n}'", "use letters, digits and . _ + - only")
    if "upgrade" in mf.trees:
        problems.add(("trees", "upgrade"), "the tree name 'upgrade' is reserved", "rename the tree")
    if PREBUILT in mf.profiles:
        problems.add(("profiles", PREBUILT), "the profile name 'prebuilt' is reserved", "rename it")
    if not known["trees"]:
        problems.add(("trees",), "no trees defined", "add at least one tree (see docs/matrix.md)")
    built = [n for n, t in mf.trees.items() if t.kind != "prebuilt"]
    if built and not known["profiles"]:
        hint = "add a 'profiles:' section, e.g. profiles: {default: {configure: []}}"
        problems.add(("trees", built[0]), "trees that are built need at least one profile", hint)
    for name, p in mf.profiles.items():
        at: YamlPath = ("profiles", name, "configure")
        flags = {a.split("=", 1)[0] for a in p.configure}
        if {"--target-list", "--target-list-exclude"} <= flags:
            msg = f"profile '{name}' has both --target-list and --target-list-exclude"
            problems.add(at, msg, "QEMU's configure refuses to mix them: keep one")
        for i, a in enumerate(p.configure):
            if not a.startswith("-"):
                hint = "write each option as one item, e.g. --target-list=x86_64-softmmu"
                problems.add((*at, i), f"'{a}' is not an option", hint)
    for section, values in (("scenarios", mf.scenarios), ("accels", mf.accels)):
        if not values:
            problems.add((section,), "must not be empty")
        for v in sorted({v for v in values if values.count(v) > 1}):
            problems.add((section,), f"'{v}' is listed twice")


def _rule_domains(m: Matrix, include: bool) -> dict[str, list[str]]:
    prebuilt = [PREBUILT] if any(t.kind == "prebuilt" for t in m.trees.values()) else []
    return {
        "tree": list(m.trees),
        "profile": list(m.profiles) + prebuilt,
        "scenario": list(SCENARIOS) if include else m.scenarios,
        "accel": list(ACCELS) if include else m.accels,
    }


def _check_rules(m: Matrix, problems: Problems) -> None:
    for section, include in (("include", True), ("exclude", False)):
        domains = _rule_domains(m, include)
        for i, rule in enumerate(getattr(m, section)):
            given = rule.model_dump(exclude_none=True)
            if include and len(given) < 4:
                missing = ", ".join(k for k in domains if k not in given)
                hint = "give tree, profile, scenario and accel (fnmatch patterns allowed)"
                problems.add((section, i), f"include rules need every key; missing: {missing}", hint)
            elif not given:
                problems.add(
                    (section, i), "empty rule", "give at least one of: tree, profile, scenario, accel"
                )
            unknown = [
                (k, pat) for k, pat in given.items() if not any(fnmatchcase(n, pat) for n in domains[k])
            ]
            for key, pat in unknown:
                hint = f"known {key}s: {', '.join(domains[key])}"
                problems.add((section, i, key), f"'{pat}' matches no {key}", hint)
            if include and len(given) == 4 and not unknown and not _rule_builds(m, rule):
                hint = f"build cells: {', '.join(c.id for c in build_cells(m))}"
                problems.add((section, i), "matches no build cell (tree/profile pair)", hint)


def _check_upgrades(m: Matrix, problems: Problems) -> None:
    cells = {c.id: c for c in build_cells(m)}
    for name, up in m.upgrades.items():
        for key in ("source", "target"):
            if getattr(up, key) not in cells:
                hint = f"build cells: {', '.join(cells)}"
                problems.add(("upgrades", name, key), f"'{getattr(up, key)}' is not a build cell", hint)
        if "boot" in (up.scenarios or []):
            problems.add(("upgrades", name, "scenarios"), "'boot' has no destination: not an upgrade")
        src, dst = cells.get(up.source), cells.get(up.target)
        if src and dst and run_image(m.repo_root, src.tree.image, dst.tree.image) is None:
            msg = (
                f"source runs in image '{src.tree.image}', target in '{dst.tree.image}', "
                "and neither derives from the other"
            )
            hint = "both binaries must run in one container: use images of one lineage"
            problems.add(("upgrades", name), msg, hint)


def image_lineage(repo_root: Path, image: str) -> list[str]:
    """``image`` and the repository images it derives from (``# cpr-harness-base: image:<name>``)."""
    chain = [image]
    while len(chain) < 16:
        recipe = repo_root / "containers" / chain[-1] / "Dockerfile"
        first = recipe.read_text().split("\n", 1)[0] if recipe.is_file() else ""
        match = re.match(r"#\s*cpr-harness-base:\s*image:(\S+)", first)
        if not match:
            break
        chain.append(match.group(1))
    return chain


def run_image(repo_root: Path, source_image: str, target_image: str) -> str | None:
    """The image an upgrade pair runs in: the one of the two that derives from the other, if any.

    A binary built in image B runs in any image derived from B (same libraries, plus more)."""
    if target_image in image_lineage(repo_root, source_image):
        return source_image
    if source_image in image_lineage(repo_root, target_image):
        return target_image
    return None


def build_cells(m: Matrix) -> list[BuildCell]:
    """Trees in file order: each profile a built tree admits; prebuilt trees get profile 'prebuilt'."""
    cells = []
    for name, t in m.trees.items():
        if t.kind == "prebuilt":
            cells.append(BuildCell(f"{name}/{PREBUILT}", name, t, PREBUILT, None))
            continue
        for p in t.profiles if t.profiles is not None else list(m.profiles):
            cells.append(BuildCell(f"{name}/{p}", name, t, p, m.profiles[p]))
    return cells


def _matches(rule: Rule, tree: str, profile: str, scenario: str, accel: str) -> bool:
    values = {"tree": tree, "profile": profile, "scenario": scenario, "accel": accel}
    return all(fnmatchcase(values[k], pat) for k, pat in rule.model_dump(exclude_none=True).items())


def _rule_builds(m: Matrix, rule: Rule) -> list[BuildCell]:
    return [
        b
        for b in build_cells(m)
        if fnmatchcase(b.tree_name, rule.tree or "*") and fnmatchcase(b.profile_name, rule.profile or "*")
    ]


def scenario_cells(m: Matrix) -> list[ScenarioCell]:
    """Build cells x scenarios x accels, minus exclude rules, plus include rules, then upgrades."""
    scenarios = m.scenarios + [s for s in SCENARIOS if s not in m.scenarios]
    accels = m.accels + [a for a in ACCELS if a not in m.accels]
    cells = []
    for b in build_cells(m):
        for s in scenarios:
            for a in accels:
                args = (b.tree_name, b.profile_name, s, a)
                default = (
                    s in m.scenarios and a in m.accels and not any(_matches(r, *args) for r in m.exclude)
                )
                if default or any(_matches(r, *args) for r in m.include):
                    cells.append(ScenarioCell(f"{b.id}/{s}/{a}", b, None, s, a))
    by_id = {b.id: b for b in build_cells(m)}
    for name, up in m.upgrades.items():
        for s in up.scenarios or [s for s in m.scenarios if s != "boot"]:
            for a in up.accels or m.accels:
                cells.append(
                    ScenarioCell(f"upgrade/{name}/{s}/{a}", by_id[up.source], by_id[up.target], s, a)
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
            f"{_display(m.path)}: selection {', '.join(map(repr, unmatched))} matches no cell", hint=hint
        )
    chosen_s = [s for s in scens if any(fnmatchcase(s.id, p) for p in patterns)]
    needed = {b.id for s in chosen_s for b in (s.build, s.target) if b is not None}
    chosen_b = [b for b in builds if b.id in needed or any(fnmatchcase(b.id, p) for p in patterns)]
    return chosen_b, chosen_s
