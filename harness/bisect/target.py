"""What a bisection bisects: the cell, the tree whose commits change, and that tree at one commit.

- a **scenario cell** (``tree/profile/.../scenario/accel``): its build's tree; a step is good when every
  run of the cell passes;
- an **upgrade cell** (``upgrade/<name>/scenario/accel``): the *target* tree; the source build stays as
  the matrix has it (built once, usually a cache hit);
- a **build cell** (``tree/profile``): its tree; a step is good when it builds.

The tree must hold commits: ``kind: git`` (its refs are resolved in the cache's mirror of its URL,
fetched when needed), or ``kind: local`` on a folder that is the top of a git checkout (refs resolved in
that checkout, which the bisection only reads). Each step builds the tree at one commit as a ``git``
tree of that commit (:meth:`Target.tree_at`): a local checkout's uncommitted changes are not part of
any commit, and the step keeps the local tree's own ccache trust domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.bisect.gitrepo import commit_of
from harness.build import gitsrc
from harness.build.sources import git_url, local_path
from harness.config import cells as mx
from harness.config.schema import Matrix, Tree
from harness.errors import ConfigError, SourceError

KINDS = ("scenario", "upgrade", "build")


@dataclass(frozen=True)
class Target:
    """One cell to bisect and the tree whose commits it bisects."""

    cell_id: str
    kind: str  # one of KINDS
    build: mx.BuildCell  # the build cell whose tree is bisected (an upgrade's target)
    scenario: mx.ScenarioCell | None  # None for a build cell
    url: str  # where the steps' git trees fetch from (the tree's URL, or the local checkout)
    base_dir: Path  # the matrix's folder (relative paths)

    @property
    def tree_name(self) -> str:
        return self.build.tree_name

    @property
    def fixed(self) -> mx.BuildCell | None:
        """An upgrade's source build: the side that does not change."""
        return self.scenario.build if self.kind == "upgrade" and self.scenario else None

    @property
    def domain(self) -> str:
        return self.build.tree.ccache_domain(self.build.tree_name)

    def tree_at(self, commit: str) -> Tree:
        """The tree at ``commit``: a ``git`` tree of that commit, same image, patches and ccache domain."""
        tree = self.build.tree
        return Tree(
            kind="git",
            image=tree.image,
            description=tree.description,
            url=self.url,
            ref=commit,
            submodules=tree.submodules if tree.kind == "git" else True,
            patches=tree.patches,
            profiles=tree.profiles,
            fill_subprojects=tree.fill_subprojects,
            ccache=self.domain,
        )

    def build_at(self, commit: str) -> mx.BuildCell:
        return dataclasses.replace(self.build, tree=self.tree_at(commit))

    def scenario_at(self, commit: str) -> mx.ScenarioCell | None:
        """The scenario cell with the bisected side at ``commit`` (None for a build cell)."""
        if self.scenario is None:
            return None
        if self.kind == "upgrade":
            return dataclasses.replace(self.scenario, target=self.build_at(commit))
        return dataclasses.replace(self.scenario, build=self.build_at(commit))


def find_cell(m: Matrix, cell_id: str) -> tuple[str, mx.BuildCell, mx.ScenarioCell | None]:
    """``(kind, bisected build cell, scenario cell or None)`` for the id ``cell_id`` of matrix ``m``."""
    builds = {b.id: b for b in mx.build_cells(m)}
    scenarios = {s.id: s for s in mx.scenario_cells(m)}
    if cell_id in scenarios:
        cell = scenarios[cell_id]
        if cell.target is not None:
            return "upgrade", cell.target, cell
        return "scenario", cell.build, cell
    if cell_id in builds:
        return "build", builds[cell_id], None
    near = [i for i in [*builds, *scenarios] if i.startswith(cell_id.rstrip("/*") + "/")][:8]
    hint = "pass one cell id, as `python -m harness list` prints it"
    raise ConfigError(
        f"{mx.display_path(m.path)}: no cell {cell_id!r} to bisect",
        hint=(f"did you mean one of: {', '.join(near)}? " if near else "") + hint,
    )


def find_target(m: Matrix, cell_id: str) -> Target:
    """The bisection target for ``cell_id``; ConfigError when its tree holds no commits to bisect."""
    kind, build, scenario = find_cell(m, cell_id)
    tree, name = build.tree, build.tree_name
    base_dir = m.path.parent
    where = f"{mx.display_path(m.path)}: tree {name}"
    if tree.kind == "git":
        url = git_url(tree, base_dir)
        assert url is not None  # the schema requires it
        return Target(cell_id, kind, build, scenario, url, base_dir)
    if tree.kind == "local":
        path = local_path(tree, base_dir)
        top = None
        if path.is_dir():
            top = gitsrc.run_git(["rev-parse", "--show-toplevel"], cwd=path, check=False)
        if top is None or top.returncode != 0 or Path(top.stdout.strip()).resolve() != path:
            raise ConfigError(
                f"{where} ({path}) is not the top of a git checkout: there are no commits to bisect",
                hint="bisect a tree of kind git, or a local tree whose path is a git work tree",
            )
        return Target(cell_id, kind, build, scenario, str(path), base_dir)
    raise ConfigError(
        f"{where} is of kind {tree.kind}: bisection needs a tree with commits",
        hint="bisect a tree of kind git, or a local tree that is a git checkout",
    )


def repository(
    target: Target, cache: Path, refs: list[tuple[str, str]], say: Callable[[str], None]
) -> tuple[Path, list[str]]:
    """``(repository, commits)``: a git repository holding the commits ``refs`` name (``[(option, ref)]``,
    e.g. ``[("--good", "v1.0")]``) and their full ids. A ``git`` tree's refs are fetched into the
    cache's mirror of its URL when needed; a ``local`` tree's are read from its checkout."""
    commits: list[str] = []
    if target.build.tree.kind == "local":
        repo = Path(target.url)
        return repo, [commit_of(repo, ref, option) for option, ref in refs]
    repo = gitsrc.mirror_path(cache, target.url)
    for option, ref in refs:
        try:
            repo, commit, _ = gitsrc.resolve(target.tree_name, target.url, ref, cache, progress=say)
        except SourceError as exc:
            hint = exc.hint or "pass a branch, tag or commit id of the tree's repository"
            raise ConfigError(f"{option} {ref!r}: {exc.message}", hint=hint) from exc
        commits.append(commit)
    return repo, commits
