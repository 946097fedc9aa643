"""The bisection loop: check the input, confirm the cell fails at ``bad``, let ``git bisect`` choose the
commits, and keep ``bisect.json`` (and its page) up to date after every step.

Order of work, and what ends it:

1. The input: the cell exists, its tree holds commits, both refs name commits, ``good`` is an ancestor
   of ``bad`` (else one message, exit 2, before anything is built).
2. ``bad`` first: the cell must fail there every time (or, for a build cell, the build must fail). A
   cell that passes, is flaky or does not build at ``bad`` ends the bisection as ``invalid`` (exit 2)
   after that one step, which is kept.
3. ``git bisect`` picks each next commit; a step's outcome becomes ``good``, ``bad`` or ``skip``. The
   answer is the first bad commit, or the commits left when only skipped ones remain (``ambiguous``), or
   the range left when ``max_steps`` ran out (``budget``).
4. When the answer is the first commit after ``good``, ``good`` is tested too: a cell that fails there as
   well was broken before the range, and the answer would be a lie (``invalid``).

``bad`` counts as a step, and so does the check of ``good``; neither is chosen by ``git bisect``. A
bisection over N commits then builds at most ``ceil(log2 N)`` commits git chose, one more per skipped
commit git had to step around, plus ``bad`` (a cache hit when the night already built it).

After the last step the build directories of the steps this bisection built are removed (their records
and artifacts stay: each step remains a cache hit), and so are the source checkouts of the commits git
chose, unless ``keep_build_dirs``.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.bisect import gitrepo
from harness.bisect.steps import StepContext, test_commit
from harness.bisect.target import Target, find_target, repository
from harness.build.builder import Builder
from harness.config import cells as mx
from harness.config.matrix import load_matrix
from harness.config.repo import CACHE_DIR, DEFAULT_MATRIX, PATCHES_DIR, REPO_ROOT, REPORTS_DIR
from harness.config.schema import Matrix
from harness.engine.containers import Engine, Limits
from harness.engine.locks import LockBusy, file_lock
from harness.errors import ConfigError, HarnessError, InfraError
from harness.live.files import write_json_atomic
from harness.live.vocab import CellId
from harness.report.bisect_page import render_bisection
from harness.store.bisect_record import BISECT_FILE, TERMS, BisectRecord, BisectStep
from harness.store.runs import Plan, RunStore, new_run_id

Say = Callable[[str], None]
BISECT_DIR = "bisect"  # reports/bisect/<run-id>/ (standalone) and <run folder>/bisect/<cell>/


@dataclass
class BisectOptions:
    """What ``python -m harness bisect`` is asked to do (the CLI's options, with the same defaults)."""

    cell: str
    good: str
    bad: str
    matrix: Path = DEFAULT_MATRIX
    runs: int = 3
    max_steps: int | None = None
    cache: Path = CACHE_DIR
    reports: Path = REPORTS_DIR
    run_id: str | None = None
    build_jobs: int | None = None
    keep_build_dirs: bool = False


@dataclass
class BisectRun:
    record: BisectRecord
    folder: Path  # the bisection's folder (bisect.json, index.html, steps/)
    run_dir: Path

    @property
    def exit_code(self) -> int:
        """0 a first bad commit was named; 1 none could be (only skipped commits, or the budget); 2 the
        input did not hold; 3 the infrastructure failed; 130 interrupted."""
        return {"found": 0, "invalid": 2, "error": 3, "interrupted": 130}.get(self.record.status, 1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_builder(matrix: Matrix, engine: Engine, cache: Path, jobs: int | None, say: Say) -> Builder:
    limits = Limits(memory_mb=matrix.settings.build_memory_mb, pids=matrix.settings.pids_limit)
    return Builder(
        engine,
        cache.resolve(),
        PATCHES_DIR,
        matrix.path.parent,
        jobs=jobs or matrix.settings.build_jobs,
        progress=say,
        limits=limits,
    )


def reproduce(matrix: Path, cell: str, good: str, bad: str) -> str:
    try:
        shown = str(Path(matrix).resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(matrix)
    return shlex.join(
        ["nox", "-s", "bisect", "--", "--matrix", shown, "--cell", cell, "--good", good, "--bad", bad]
    )


class Bisection:
    """One bisection in ``folder``: :meth:`run` it once."""

    def __init__(self, ctx: StepContext, record: BisectRecord, run_id: str) -> None:
        self.ctx, self.record, self.run_id = ctx, record, run_id

    @property
    def folder(self) -> Path:
        return self.ctx.folder

    def save(self) -> None:
        write_json_atomic(self.folder / BISECT_FILE, self.record.to_json())
        render_bisection(self.folder, self.record, self.run_id)

    def _step(self, commit: str, role: str) -> BisectStep:
        info = gitrepo.describe(self.ctx.repo, commit)
        step = test_commit(self.ctx, len(self.record.steps) + 1, info, role)
        self.record.steps.append(step)
        self.save()
        return step

    def _budget_left(self) -> bool:
        return self.record.max_steps is None or len(self.record.steps) < self.record.max_steps

    def run(self) -> BisectRecord:
        """Bisect; the record (also in ``bisect.json``). Raises ConfigError (``invalid``), InfraError
        (``error``) and KeyboardInterrupt (``interrupted``) after saving the record with that status."""
        record = self.record
        record.started_at = record.started_at or _now()
        self.save()
        try:
            self._bisect()
        except ConfigError as exc:
            self.end("invalid", exc.message)
            raise
        except HarnessError as exc:
            self.end("error", exc.message)
            raise
        except KeyboardInterrupt:
            self.end("interrupted", "interrupted (Ctrl-C): the steps done so far are kept")
            raise
        self.end(record.status, record.message)
        return record

    def end(self, status: str, message: str) -> None:
        self.record.status, self.record.message = status, message
        self.record.finished_at = _now()
        with contextlib.suppress(OSError):
            self.save()

    def _bisect(self) -> None:
        record = self.record
        bad = self._step(record.bad.commit, "bad")
        self._check_bad(bad)
        with gitrepo.GitBisect(self.ctx.repo) as git:
            standing = git.start(record.bad.commit, record.good.commit)
            while not standing.done:
                if not self._budget_left():
                    record.status = "budget"
                    record.candidates = [gitrepo.describe(self.ctx.repo, c) for c in git.remaining()]
                    record.message = f"the step budget ({record.max_steps}) ran out"
                    return
                assert standing.next is not None
                step = self._step(standing.next, "step")
                standing = git.mark(standing.next, TERMS[step.outcome])
        if standing.first_bad is None:
            record.status = "ambiguous"
            record.candidates = [gitrepo.describe(self.ctx.repo, c) for c in standing.candidates]
            record.message = "only skipped commits (broken, flaky or unjudged) are left"
            return
        record.first_bad = gitrepo.describe(self.ctx.repo, standing.first_bad)
        tested = next((s for s in record.steps if s.commit.commit == standing.first_bad), None)
        record.first_bad_check = (tested.check or tested.reason) if tested else ""
        record.status, record.message = "found", ""
        parents = gitrepo.parent_of(self.ctx.repo, standing.first_bad)
        if parents == [record.good.commit] and self._budget_left():
            self._check_good(self._step(record.good.commit, "good"))

    def _check_bad(self, step: BisectStep) -> None:
        record, what = self.record, f"--bad {self.record.bad_ref} ({self.record.bad.short})"
        if step.outcome == "bad":
            return
        if record.kind == "build":
            raise ConfigError(
                f"build cell {record.cell} builds at {what}: nothing to bisect",
                hint="pass a --bad commit where the build fails",
            )
        problems = {
            "good": (
                f"cell {record.cell} passes at {what}: {step.reason}; nothing to bisect",
                "pass a --bad commit where the cell fails (the one of the red run), or check the cell id",
            ),
            "flaky": (
                f"cell {record.cell} is flaky at {what}: {step.reason}",
                "bisect from a commit where it fails every time, or raise --runs",
            ),
            "broken": (
                f"the tree does not build at {what}: {step.reason}",
                f"bisect the build cell {self.ctx.target.build.id} instead",
            ),
            "unjudged": (
                f"cell {record.cell} cannot be judged at {what}: {step.reason}",
                "see the step's result: an unsupported mode or a refused configuration is no regression",
            ),
        }
        message, hint = problems[step.outcome]
        raise ConfigError(message, hint=hint)

    def _check_good(self, step: BisectStep) -> None:
        if step.outcome == "good":
            return
        raise ConfigError(
            f"cell {self.record.cell} is {step.outcome} at --good {self.record.good_ref} "
            f"({self.record.good.short}) too ({step.reason}): the first bad commit is not in this range",
            hint="pass an older --good commit where the cell passes",
        )


def remove_build_dirs(record: BisectRecord, cache: Path, say: Say) -> int:
    """Remove the build directories of the steps this bisection built (records and artifacts stay), and
    the source checkouts of the commits git chose (``trees/git-<commit>``, ~400 MB each; the mirror can
    check one out again). The checkouts of ``--good`` and ``--bad`` stay: a night builds those."""
    removed = 0
    for step in record.steps:
        key = step.build.get("key")
        if not key or step.build.get("cache_hit") or not step.build.get("verdict"):
            continue
        if step.role == "step":
            for suffix in ("", "-nosub"):
                shutil.rmtree(cache / "trees" / f"git-{step.commit.commit[:16]}{suffix}", ignore_errors=True)
        home = cache / "builds" / key
        try:
            with file_lock(home / ".lock", timeout=1):
                if (home / "obj").is_dir() and not (home / "obj").is_symlink():
                    shutil.rmtree(home / "obj")
                    removed += 1
        except (LockBusy, OSError) as exc:
            say(f"bisect: kept the build directory of {key} ({exc})")
    return removed


def bisect(options: BisectOptions, say: Say = print) -> BisectRun:
    """``python -m harness bisect``: one bisection in a new run folder under ``reports/bisect/``."""
    if options.runs < 1:
        raise ConfigError(f"--runs {options.runs}: at least 1", hint="the default is 3")
    matrix = load_matrix(options.matrix, repo_root=REPO_ROOT)
    target = find_target(matrix, options.cell)
    cache = options.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    repo, (good, bad) = repository(target, cache, [("--good", options.good), ("--bad", options.bad)], say)
    check_range(repo, good, bad, options.good, options.bad)
    plan = Plan(commands=["bisect"], matrix=mx.display_path(matrix.path), started_at=new_run_id())
    store, note = RunStore.open(options.reports / BISECT_DIR, options.run_id, plan)
    if note:
        say(note)
    engine = Engine.connect(progress=say, lock_dir=cache / "locks")
    engine.remove_orphans()
    builder = make_builder(matrix, engine, cache, options.build_jobs, say)
    folder = store.root / BISECT_DIR / CellId(options.cell).folder()
    command = reproduce(options.matrix, options.cell, options.good, options.bad)
    bisection = prepare(
        target,
        repo,
        good,
        bad,
        options.good,
        options.bad,
        builder,
        matrix,
        folder,
        options.runs,
        options.max_steps,
        command,
        say,
    )
    record = bisection.record
    try:
        run_one(bisection, say)
    finally:
        if not options.keep_build_dirs:
            remove_build_dirs(record, cache, say)
        render_run_folder(store.root, say)
    return BisectRun(record, folder, store.root)


def check_range(repo: Path, good: str, bad: str, good_ref: str, bad_ref: str) -> None:
    if good == bad:
        raise ConfigError(
            f"--good {good_ref} and --bad {bad_ref} are the same commit {good[:12]}",
            hint="pass an older --good commit",
        )
    if not gitrepo.is_ancestor(repo, good, bad):
        swapped = gitrepo.is_ancestor(repo, bad, good)
        raise ConfigError(
            f"--good {good_ref} ({good[:12]}) is not an ancestor of --bad {bad_ref} ({bad[:12]})"
            + (": they are swapped" if swapped else ""),
            hint="--good is the older commit where the cell passes, --bad the newer one where it fails",
        )


def prepare(
    target: Target,
    repo: Path,
    good: str,
    bad: str,
    good_ref: str,
    bad_ref: str,
    builder: Builder,
    matrix: Matrix,
    folder: Path,
    runs: int,
    max_steps: int | None,
    command: str,
    say: Say,
    origin: str = "command",
) -> Bisection:
    """A bisection of ``target`` from ``good`` to ``bad`` in ``folder`` (nothing built yet)."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = StepContext(target, repo, builder, builder.engine, matrix.settings, runs, folder, command, say)
    record = BisectRecord(
        cell=target.cell_id,
        kind=target.kind,
        tree=target.tree_name,
        good=gitrepo.describe(repo, good),
        bad=gitrepo.describe(repo, bad),
        good_ref=good_ref,
        bad_ref=bad_ref,
        commits=gitrepo.count(repo, good, bad),
        runs=runs,
        max_steps=max_steps,
        matrix=mx.display_path(matrix.path),
        reproduce=command,
        origin=origin,
        started_at=_now(),
    )
    return Bisection(ctx, record, folder.parent.parent.name)


def run_one(bisection: Bisection, say: Say) -> BisectRecord:
    """Run ``bisection`` (its upgrade source built first); say its answer."""
    ctx, record = bisection.ctx, bisection.record
    say(
        f"bisect {record.cell}: {record.commits} commit(s) from {record.good.short} (good) to "
        f"{record.bad.short} (bad), {record.runs} run(s) per step"
    )
    started = time.monotonic()
    fixed = ctx.target.fixed
    if fixed is not None:
        outcome = ctx.builder.build(fixed)
        if not outcome.ok or outcome.artifact is None:
            error = InfraError if outcome.record.infra else ConfigError
            bisection.record.status = "error" if outcome.record.infra else "invalid"
            why = f"the upgrade's source build {fixed.id}: {outcome.record.why()}"
            bisection.end(bisection.record.status, why)
            raise error(bisection.record.message, hint="fix or choose the upgrade's source build first")
        ctx.fixed = outcome.artifact
        record.fixed = {
            "cell": fixed.id,
            "key": (outcome.record.key or "")[:16],
            "qemu_version": outcome.record.qemu_version or "",
        }
    try:
        bisection.run()
    finally:
        built = record.builds()
        say(
            f"bisect {record.cell}: {record.summary()} — {len(record.steps)} step(s), {built} build(s), "
            f"{time.monotonic() - started:.0f} s; {bisection.folder / 'index.html'}"
        )
    return record


def render_run_folder(run_dir: Path, say: Say) -> None:
    """Re-render the run folder's dashboard (it lists the bisections); a damaged folder is only noted."""
    from harness.report.render import render_run

    try:
        render_run(run_dir)
    except (OSError, HarnessError) as exc:
        say(f"bisect: the run folder's dashboard was not rendered: {exc}")
