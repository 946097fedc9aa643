"""Apply a triage remedy (a matrix change, as data) to a build cell's profile: ``--remedy auto``.

A change (see ``harness/triage_rules.yaml``) has ``name`` (the suffix of the derived profile), and any of
``remove_configure`` (options dropped by name), ``add_configure`` (options appended; one replaces the
profile's own option of the same name, and ``--enable-x``/``--disable-x`` replace each other) and
``add_cflags`` (merged into ``--extra-cflags``); ``fill_subprojects: store`` changes the tree instead (its
required submodule folders are filled from the subproject store, see :mod:`harness.build.subproject_store`).
The derived profile is ``<profile>+<name>``, its cell ``<tree>/<profile>+<name>``: it has its own
configure flags, hence its own build key, and sits beside the original in the run's records.
"""

from __future__ import annotations

import re
from typing import Any

from harness.config.cells import BuildCell
from harness.config.schema import Profile

TARGET_LIST = "--target-list"
TARGET_EXCLUDE = "--target-list-exclude"


class RemedyNotApplicable(Exception):
    """The change cannot be applied to this profile (it would change nothing, or conflict)."""


def _option_name(arg: str) -> str:
    name = arg.split("=", 1)[0]
    return re.sub(r"^--(enable|disable)-", "--feature-", name)


def apply_change(configure: list[str], change: dict[str, Any]) -> list[str]:
    """``configure`` with ``change`` applied. Raises RemedyNotApplicable when nothing would change."""
    out = list(configure)
    for arg in change.get("remove_configure", []):
        out = [a for a in out if a.split("=", 1)[0] != str(arg).split("=", 1)[0]]
    for arg in change.get("add_configure", []):
        if arg.startswith(TARGET_EXCLUDE + "=") and any(a.startswith(TARGET_LIST + "=") for a in out):
            out = _drop_targets(out, arg.split("=", 1)[1].split(","))
            continue
        if arg.startswith(TARGET_EXCLUDE + "="):  # merged with the profile's own exclusions
            excluded: list[str] = [
                x for a in out if a.startswith(TARGET_EXCLUDE + "=") for x in a.split("=", 1)[1].split(",")
            ]
            excluded += [x for x in str(arg).split("=", 1)[1].split(",") if x not in excluded]
            arg = TARGET_EXCLUDE + "=" + ",".join(excluded)
        out = [a for a in out if _option_name(a) != _option_name(arg)] + [arg]
    flags = [str(f) for f in change.get("add_cflags", [])]
    if flags:
        current = next((a for a in out if a.startswith("--extra-cflags=")), None)
        if current is None:
            out.append("--extra-cflags=" + " ".join(flags))
        else:
            have = current.split("=", 1)[1].split()
            merged = " ".join([*have, *(f for f in flags if f not in have)])
            out[out.index(current)] = "--extra-cflags=" + merged
    if out == configure:
        raise RemedyNotApplicable(f"the profile already has {change}")
    return out


def _drop_targets(configure: list[str], excluded: list[str]) -> list[str]:
    out = []
    for arg in configure:
        if arg.startswith(TARGET_LIST + "="):
            kept = [t for t in arg.split("=", 1)[1].split(",") if t not in excluded]
            if not kept:
                raise RemedyNotApplicable(f"excluding {', '.join(excluded)} leaves no target")
            arg = TARGET_LIST + "=" + ",".join(kept)
        out.append(arg)
    return out


CONFIGURE_KEYS = ("remove_configure", "add_configure", "add_cflags")


def derived_cell(cell: BuildCell, change: dict[str, Any]) -> BuildCell:
    """The cell ``<tree>/<profile>+<name>`` whose profile (or tree) has ``change`` applied."""
    assert cell.profile is not None, "prebuilt cells are not remedied"
    tree, configure = cell.tree, list(cell.profile.configure)
    fill = change.get("fill_subprojects")
    if fill:
        if tree.fill_subprojects == fill:
            raise RemedyNotApplicable(f"tree {cell.tree_name} already has fill_subprojects: {fill}")
        tree = tree.model_copy(update={"fill_subprojects": str(fill)})
    if any(change.get(k) for k in CONFIGURE_KEYS) or not fill:
        configure = apply_change(configure, change)
    suffix = (
        re.sub(r"[^A-Za-z0-9._-]+|-{2,}", "-", str(change.get("name") or "remedy")).strip("-") or "remedy"
    )
    name = f"{cell.profile_name}+{suffix}"
    description = f"{cell.profile_name} with the triage remedy {suffix} (--remedy auto)"
    profile = Profile(description=description, configure=configure, targets=list(cell.profile.targets))
    return BuildCell(f"{cell.tree_name}/{name}", cell.tree_name, tree, name, profile)
