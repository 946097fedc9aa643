"""The test matrix: which QEMU trees to build, with which configure profiles, and which scenarios to run.

``load_matrix`` reads a YAML file (schema: docs/matrix.md, models in :mod:`harness.config.schema`),
validates it and reports every problem in one :class:`ConfigError` whose lines read
``file:line: dotted.key: problem``. :mod:`harness.config.cells` expands the result into cells.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config import images, yamlpos
from harness.config.cells import build_cells, display_path, rule_builds
from harness.config.schema import (
    _COMMON,
    BUILTIN_MACHINES,
    BUILTIN_MIGRATIONS,
    KIND_FIELDS,
    NAME_RE,
    PREBUILT,
    Machine,
    Matrix,
    MatrixFile,
    MigrationSet,
    Tree,
)
from harness.config.yamlpos import Problems, YamlPath
from harness.errors import ConfigError
from harness.live.machine import DEVICES, MINIMAL
from harness.live.migration import NAME as QMP_NAME
from harness.live.migration import RECIPE_CAPABILITIES, RECIPE_PARAMETERS
from harness.live.refusals import REFUSALS
from harness.live.vocab import Accel, Mode

RULE_KEYS = ("tree", "profile", "scenario", "accel")  # an include rule gives each; machine is optional


def load_matrix(path: Path, repo_root: Path | None = None) -> Matrix:
    """Read, validate and cross-check a matrix file. Raises one ConfigError listing every problem."""
    path = Path(path)
    shown = display_path(path)
    if not path.is_file():
        raise ConfigError(
            f"{shown}: matrix file not found", hint="pass an existing file, e.g. matrices/default.yaml"
        )
    if repo_root is None:
        parent = path.resolve().parent
        repo_root = parent.parent if parent.name == "matrices" else parent
    data, lines = yamlpos.load(read_text(path, shown), shown)
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
    machines = _check_machines(mf, path.resolve().parent, problems)
    migration = _check_migration(mf, problems)
    fields = {k: getattr(mf, k) for k in MatrixFile.model_fields}
    fields |= {"trees": trees, "machines": machines, "migration": migration}
    m = Matrix(path=path, repo_root=Path(repo_root), **fields)
    if not problems:
        _check_rules(m, problems)
        _check_upgrades(m, problems)
    if problems:
        raise yamlpos.config_error(shown, lines, problems)
    return m


def read_text(path: Path, shown: str) -> str:
    """The matrix file as text; a file that is not UTF-8 is one ConfigError naming the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{shown}:{line}: the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            hint="save the matrix as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        ) from None


def patch_folder(patches_dir: Path, matrix_dir: Path, patches: str) -> Path:
    """The folder of a tree's ``patches:``: a name under ``patches_dir`` (the repository's ``patches/``),
    or a path (it holds a ``/``) relative to the matrix file's folder."""
    return matrix_dir / patches if "/" in patches else patches_dir / patches


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
        if (
            len(loc) >= 2
            and isinstance(section, dict)
            and loc[0] in ("trees", "profiles", "upgrades", "machines", "migration")
        ):
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


def _check_trees(
    mf: MatrixFile, root: Path, base: Path, profile_names: list[str], problems: Problems
) -> dict[str, Tree]:
    known_images = images.image_names(root / "containers")
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
        if t.kind == "tarball" and t.url and not re.match(r"(https?://|file:///)", t.url):
            add(("url",), "must be an http(s):// URL or a file:///absolute/path URL")
        for key in ("url", "ref"):
            value = getattr(t, key)
            if value is not None and value.strip().startswith("-"):
                add(
                    (key,), f"must not start with '-' ({value!r} would be read as an option)", "fix the value"
                )
        if t.binary is not None and not t.binary.startswith("/"):
            add(("binary",), "must be an absolute path inside the image")
        if t.path is not None and not (base / t.path).is_dir():
            add(("path",), f"directory not found: {base / t.path}", "relative paths start at the matrix file")
        if t.image not in known_images:
            hint = f"known images: {', '.join(known_images) or 'none'}"
            add(("image",), f"unknown image '{t.image}' (no containers/{t.image}/Dockerfile)", hint)
        if t.patches is not None and "/" in t.patches:
            if not patch_folder(root / "patches", base, t.patches).is_dir():
                hint = "a path with '/' starts at the matrix file's folder; a plain name is patches/<name>/"
                add(
                    ("patches",), f"folder not found: {patch_folder(root / 'patches', base, t.patches)}", hint
                )
        elif t.patches is not None and t.patches not in patch_dirs:
            hint = f"known patch folders: {', '.join(patch_dirs) or 'none'}"
            add(("patches",), f"no folder patches/{t.patches}/ under {root}", hint)
        if t.ccache is not None and not NAME_RE.fullmatch(t.ccache):
            add(("ccache",), f"invalid ccache domain '{t.ccache}'", "use letters, digits and . _ + - only")
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
    sections = (
        ("trees", mf.trees),
        ("profiles", mf.profiles),
        ("upgrades", mf.upgrades),
        ("machines", mf.machines),
        ("migration", mf.migration),
    )
    for section, names in sections:
        for n in names:
            if not NAME_RE.fullmatch(n):
                problems.add((section, n), f"invalid name '{n}'", "use letters, digits and . _ + - only")
    if "upgrade" in mf.trees:
        problems.add(("trees", "upgrade"), "the tree name 'upgrade' is reserved", "rename the tree")
    settings = mf.settings
    if settings.scenario_memory_mb is not None and settings.scenario_memory_mb < settings.shm_mb + 256:
        need = settings.shm_mb + 256
        problems.add(
            ("settings", "scenario_memory_mb"),
            f"{settings.scenario_memory_mb} MiB cannot hold two guests of {settings.guest_ram_mb} MiB",
            f"give at least {need} (2 x guest_ram_mb + 512), or leave it out for the default",
        )
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
    listed: tuple[tuple[str, list[str]], ...] = (
        ("scenarios", [str(s) for s in mf.scenarios]),
        ("accels", [str(a) for a in mf.accels]),
        ("refusals", list(mf.refusals)),
    )
    for i, name in enumerate(mf.refusals):
        if name not in REFUSALS:
            problems.add(
                ("refusals", i), f"unknown refusal scenario '{name}'", f"known: {', '.join(REFUSALS)}"
            )
    for name in sorted(set(mf.machines) & set(mf.migration)):
        hint = "both become a part of cell ids: rename one"
        problems.add(("migration", name), f"'{name}' is also a machine profile", hint)
    for section, values in listed:
        if not values and section != "refusals":
            problems.add((section,), "must not be empty")
        for v in sorted({v for v in values if values.count(v) > 1}):
            problems.add((section,), f"'{v}' is listed twice")


def _check_machines(mf: MatrixFile, base: Path, problems: Problems) -> dict[str, Machine]:
    """The machine profiles in file order (``minimal`` alone when none are named), each checked: known
    devices, Linux-only keys, kernel and initramfs files that exist."""
    out: dict[str, Machine] = {}
    for name, given in (mf.machines or {MINIMAL: None}).items():
        add = problems.under(("machines", name))
        if name in BUILTIN_MACHINES:
            if given is not None and given.model_fields_set - {"description"}:
                add((), f"'{name}' is built in and takes no settings", "give your profile another name")
            out[name] = BUILTIN_MACHINES[name]
            continue
        m = given or Machine()
        linux = m.guest == "linux"
        for i, device in enumerate(m.devices):
            if device not in DEVICES:
                add(("devices", i), f"unknown device '{device}'", f"known devices: {', '.join(DEVICES)}")
            elif not device.startswith("virtio-blk-") and m.devices.count(device) > 1:
                add(("devices", i), f"device '{device}' is listed twice", "only disks may repeat")
        if m.devices and not linux:
            add(
                ("devices",),
                "devices need the Linux guest (the firmware guest drives none)",
                "add 'guest: linux'",
            )
        if m.firmware == "ovmf" and not linux:
            add(("firmware",), "OVMF boots the Linux guest only", "add 'guest: linux'")
        for key in ("kernel", "initrd"):
            value = getattr(m, key)
            if value is None:
                continue
            if not linux:
                add((key,), "only for 'guest: linux'", "remove it, or add 'guest: linux'")
            elif not (base / value).is_file():
                add((key,), f"file not found: {base / value}", "relative paths start at the matrix file")
        if (m.kernel is None) != (m.initrd is None) and linux:
            add(("kernel" if m.kernel is None else "initrd",), "kernel and initrd are given together")
        memory = mf.settings.scenario_memory_mb
        if m.ram_mb is not None and memory is not None and memory < 2 * m.ram_mb + 512:
            hint = f"give settings.scenario_memory_mb at least {2 * m.ram_mb + 512}, or a smaller ram_mb"
            add(
                ("ram_mb",),
                f"settings.scenario_memory_mb {memory} MiB cannot hold two guests of {m.ram_mb} MiB",
                hint,
            )
        out[name] = m.model_copy(
            update={k: str((base / v).resolve()) for k in ("kernel", "initrd") if (v := getattr(m, k))}
        )
    return out


def _check_migration(mf: MatrixFile, problems: Problems) -> dict[str, MigrationSet]:
    """The migration option sets in file order (``default`` alone when none are named), each checked:
    QMP names, and nothing a recipe owns (the mode, cpr-exec-command, x-ignore-shared, ...)."""
    out: dict[str, MigrationSet] = {}
    for name, given in (mf.migration or {"default": None}).items():
        add = problems.under(("migration", name))
        if name in BUILTIN_MIGRATIONS:
            if given is not None and given.model_fields_set - {"description"}:
                add((), f"'{name}' is built in and takes no settings", "give your set another name")
            out[name] = BUILTIN_MIGRATIONS[name]
            continue
        m = given or MigrationSet()
        if not m.capabilities and not m.parameters:
            add((), "sets no capability and no parameter", "add capabilities: [...] or parameters: {...}")
        for i, cap in enumerate(m.capabilities):
            if not QMP_NAME.fullmatch(cap):
                add(("capabilities", i), f"'{cap}' is not a QMP capability name", "e.g. mapped-ram, multifd")
            elif cap in RECIPE_CAPABILITIES:
                add(("capabilities", i), f"'{cap}' is set by the recipes", "remove it")
        for key in m.parameters:
            if not QMP_NAME.fullmatch(key):
                add(("parameters", key), f"'{key}' is not a QMP parameter name", "e.g. multifd-channels")
            elif key in RECIPE_PARAMETERS:
                add(("parameters", key), f"'{key}' is set by the recipes", "remove it")
        out[name] = m
    return out


def _rule_domains(m: Matrix, include: bool) -> dict[str, list[str]]:
    prebuilt = [PREBUILT] if any(t.kind == "prebuilt" for t in m.trees.values()) else []
    scenarios = [*Mode, *REFUSALS] if include else [*m.scenarios, *m.refusals]
    return {
        "tree": list(m.trees),
        "profile": list(m.profiles) + prebuilt,
        "scenario": [str(s) for s in scenarios],
        "accel": [str(a) for a in (list(Accel) if include else m.accels)],
        "machine": list(m.machines),
        "migration": list(m.migration),
    }


def _check_rules(m: Matrix, problems: Problems) -> None:
    for section, include in (("include", True), ("exclude", False)):
        domains = _rule_domains(m, include)
        for i, rule in enumerate(getattr(m, section)):
            given = rule.model_dump(exclude_none=True)
            if include and not set(RULE_KEYS) <= set(given):
                missing = ", ".join(k for k in RULE_KEYS if k not in given)
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
            if include and set(RULE_KEYS) <= set(given) and not unknown and not rule_builds(m, rule):
                hint = f"build cells: {', '.join(c.id for c in build_cells(m))}"
                problems.add((section, i), "matches no build cell (tree/profile pair)", hint)


def _check_upgrades(m: Matrix, problems: Problems) -> None:
    cells = {c.id: c for c in build_cells(m)}
    for name, up in m.upgrades.items():
        for key in ("source", "target"):
            if getattr(up, key) not in cells:
                hint = f"build cells: {', '.join(cells)}"
                problems.add(("upgrades", name, key), f"'{getattr(up, key)}' is not a build cell", hint)
        if Mode.BOOT in (up.scenarios or []):
            problems.add(("upgrades", name, "scenarios"), "'boot' has no destination: not an upgrade")
        for i, machine in enumerate(up.machines or []):
            if machine not in m.machines:
                hint = f"machine profiles: {', '.join(m.machines)}"
                problems.add(("upgrades", name, "machines", i), f"unknown machine profile '{machine}'", hint)
        for i, mig in enumerate(up.migration or []):
            if mig not in m.migration:
                hint = f"option sets: {', '.join(m.migration)}"
                problems.add(("upgrades", name, "migration", i), f"unknown option set '{mig}'", hint)
        src, dst = cells.get(up.source), cells.get(up.target)
        recipes = m.repo_root / "containers"
        if src and dst and images.run_image(recipes, src.tree.image, dst.tree.image) is None:
            msg = (
                f"source runs in image '{src.tree.image}', target in '{dst.tree.image}', "
                "and neither derives from the other"
            )
            hint = "both binaries must run in one container: use images of one lineage"
            problems.add(("upgrades", name), msg, hint)
