"""Configure and compile one (tree, profile) build cell inside a container, with a trustworthy record.

Flow: image -> fetch source -> patch queue -> build key -> cache hit? -> configure -> ninja -> artifacts.

* Build key = sha256 over (source digest, patch-queue digest, configure flags, ninja targets, image id).
  A finished, passing build with the same key is a cache hit and is not rebuilt.
* Layout under the cache: ``builds/<key16>/`` with ``build.json`` (written when the build starts and at
  each stage, completed when it ends, so it survives a kill), ``reproduce.sh`` (written before the
  build starts), ``build.log``, ``obj/`` (meson build dir) and ``artifacts/{bin,share}``. Patched trees
  are shared under ``patched/<digest16>/``; ccache lives in ``ccache/<trust domain>/`` (the tree's
  :meth:`~harness.config.schema.Tree.ccache_domain`: per image, a ``local`` tree alone), so a tree can
  poison the compiler cache only of trees that share its domain.
* The container: the dedicated build uid, no capabilities, pids and memory limits, source mounted
  read-only at ``/src``, build dir at ``/build``, ccache at ``/ccache`` (fixed paths, so ccache hits
  across trees of one domain: QEMU compiles with ``-g``), no network.

Each stage runs under :meth:`Builder._stage`, which records where the build is; the outcome is decided
in one place (:meth:`Builder._finish`). The builder does not judge *why* a build failed: triage runs
after it (:func:`harness.build.triage.annotate`), on the outcome's ``failure_output``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from harness.build import incremental
from harness.build import patches as patchq
from harness.build.buildbox import (
    build_dir_for,
    build_env,
    ccache_delta,
    ccache_stats,
    collect_artifacts,
    give_to_build_user,
    reproduce_script,
    version_in_image,
)
from harness.build.incremental import Seed
from harness.build.outcome import Artifact, BuildOutcome, StepFailed, build_key, join_errors
from harness.build.sources import fetch_tree
from harness.build.subproject_store import prepare
from harness.config.cells import BuildCell
from harness.config.matrix import patch_folder
from harness.engine.containers import ContainerSession, Engine, ImageRef, Limits, Mount, RunResult
from harness.engine.locks import file_lock
from harness.engine.sandbox import build_user
from harness.errors import HarnessError, InfraError
from harness.live.files import write_json_atomic, write_text_atomic
from harness.live.vocab import Stage, Verdict
from harness.store.build_record import BuildRecord, ImageInfo

__all__ = ["Artifact", "BuildOutcome", "Builder", "StepFailed", "build_key"]

PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")
LINK_ERROR = re.compile(r"undefined reference|ld returned|collect2")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Builder:
    def __init__(
        self,
        engine: Engine,
        cache_dir: Path,
        patches_dir: Path,
        base_dir: Path,
        jobs: int | None = None,
        progress: Callable[[str], None] = print,
        limits: Limits | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self.cache = cache_dir
        self.patches_dir = patches_dir
        self.base_dir = base_dir
        self.jobs = jobs or os.cpu_count() or 2
        self.progress = progress

    def share(self, jobs: int, progress: Callable[[str], None]) -> Builder:
        """The same builder with ``jobs`` ninja jobs and its own progress (one of several running at once)."""
        return Builder(self.engine, self.cache, self.patches_dir, self.base_dir, jobs, progress)

    # -- public ---------------------------------------------------------------------------------

    def build(self, cell: BuildCell, seed: Seed | None = None) -> BuildOutcome:
        """Build ``cell`` (or find it in the cache). Never raises for the cell's own problems or the
        infrastructure's: they end in the outcome's record (verdict, stage, error).

        ``seed``: an earlier build of the same cell whose build directory this one may start from, when
        :mod:`harness.build.incremental` finds that safe (bisection steps); the record says whether."""
        if cell.tree.kind == "prebuilt":
            return self._prebuilt(cell)
        record = BuildRecord(
            cell=cell.id,
            tree=cell.tree_name,
            kind=cell.tree.kind,
            profile=cell.profile_name,
            started_at=_now(),
        )
        started = time.monotonic()
        home: Path | None = None
        with contextlib.ExitStack() as held:  # the build key's lock, held until the record is final
            try:
                with self._stage(record, Stage.FETCH, None):
                    image = self.engine.ensure_image(cell.tree.image)
                    record.image = ImageInfo(image.name, image.tag, image.id)
                    t0 = time.monotonic()
                    source = fetch_tree(
                        cell.tree_name, cell.tree, self.cache, engine=self.engine, image=image,
                        base_dir=self.base_dir, progress=self.progress,
                    )  # fmt: skip
                    source = prepare(source, cell.tree.fill_subprojects, self.cache, self.progress)
                    record.durations["fetch_s"] = round(time.monotonic() - t0, 2)
                    record.source = {"digest": source.digest, **source.provenance}
                with self._stage(record, Stage.PATCH, None):
                    patches = cell.tree.patches
                    queue = (
                        patchq.load_queue(patch_folder(self.patches_dir, self.base_dir, patches))
                        if patches
                        else None
                    )
                assert cell.profile is not None and source.path is not None
                key = build_key(
                    source.digest,
                    queue.digest if queue else patchq.EMPTY_DIGEST,
                    cell.profile.configure,
                    cell.profile.targets,
                    image.id,
                )
                home = self.cache / "builds" / key[:16]
                held.enter_context(file_lock(home / ".lock"))
                hit = self._cache_hit(home, cell)
                if hit:
                    return hit
                record.key = key
                record.configure, record.targets = list(cell.profile.configure), list(cell.profile.targets)
                record.series = queue.describe() if queue else None
                record.log = str(home / "build.log")
                self._cold_build(cell, record, home, image, source.path, queue, seed)
            except StepFailed as exc:
                output = exc.result.output if exc.result is not None else ""
                return self._finish(cell, record, home, Verdict.FAIL, started, exc.error, output)
            except InfraError as exc:
                record.stage, record.hint = Stage.INFRA, exc.hint
                return self._finish(cell, record, home, Verdict.ERROR, started, exc.message, exc.hint or "")
            except HarnessError as exc:  # the tree's source or patch queue (the stage says which)
                record.hint = exc.hint
                return self._finish(cell, record, home, Verdict.FAIL, started, exc.message, exc.hint or "")
            except OSError as exc:  # the cache's disk: not the tree's fault
                record.stage = Stage.INFRA
                why = f"{exc.strerror or exc} ({exc.filename or home or self.cache})"
                return self._finish(cell, record, home, Verdict.ERROR, started, why)
            return self._finish(cell, record, home, Verdict.PASS, started)

    # -- stages ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _stage(self, record: BuildRecord, stage: Stage, home: Path | None) -> Iterator[None]:
        """The one stage guard: the record says where the build is (also on disk, once it has a home),
        so a build killed here leaves a ``running`` record naming this stage."""
        record.stage = stage
        if home is not None:
            write_json_atomic(home / "build.json", record.to_json())
        yield

    def _cold_build(
        self,
        cell: BuildCell,
        record: BuildRecord,
        home: Path,
        image: ImageRef,
        pristine: Path,
        queue: patchq.PatchQueue | None,
        seed: Seed | None = None,
    ) -> None:
        domain = cell.tree.ccache_domain(cell.tree_name)
        obj, ccache = home / "obj", self.cache / "ccache" / domain
        for folder in (ccache, home / "artifacts"):
            folder.mkdir(parents=True, exist_ok=True)
        with self._stage(record, Stage.PATCH, home):
            source = self._patched_tree(pristine, queue, record)
            record.source_dir = str(source)
            statuses = (record.series or {}).get("statuses", [])
            if any(s["status"] != "applied" for s in statuses):
                raise StepFailed("a patch did not apply")
        build_dir_for(obj)
        give_to_build_user(ccache)
        script = reproduce_script(
            cell.id, record.key or "", image, source, record.configure, record.targets, self.jobs
        )
        write_text_atomic(home / "reproduce.sh", script)
        (home / "reproduce.sh").chmod(0o755)
        # a seeded build changes the source tree's mtimes: it holds the tree's lock until ninja is done
        lock = file_lock(incremental.lock_for(self.cache, source)) if seed else contextlib.nullcontext()
        with lock:
            seeding = None
            if seed is not None:
                seeding = incremental.plan_for(seed, record, image.id, domain, source, obj, self.progress)
            self._compile(cell, record, home, image, source, ccache, seeding)

    def _compile(
        self,
        cell: BuildCell,
        record: BuildRecord,
        home: Path,
        image: ImageRef,
        source: Path,
        ccache: Path,
        seeding: incremental.SeedPlan | None,
    ) -> None:
        """Configure (unless a seed makes it needless), ninja, collect the artifacts: in one container."""
        obj = home / "obj"
        mounts = [Mount(source, "/src", read_only=True), Mount(obj, "/build"), Mount(ccache, "/ccache")]
        if seeding is not None:
            mounts.append(Mount(seeding.seed.obj, "/seed", read_only=True))
        with (
            (home / "build.log").open("w", encoding="utf-8") as log,
            self.engine.session(
                image,
                mounts=mounts,
                user=build_user(),
                env=build_env(),
                limits=self.limits,
                label=f"build {cell.id}",
            ) as box,  # network off
        ):
            record.compiler = (box.exec(["cc", "--version"]).output.splitlines() or [""])[0]
            before = ccache_stats(box)
            with self._stage(record, Stage.CONFIGURE, home):
                if seeding is not None:
                    seeding = incremental.copy_seed(box, log, record, seeding, self.progress)
                if seeding is None or seeding.run_configure:
                    self._step(box, log, "configure", ["/src/configure", *record.configure], record)
            with self._stage(record, Stage.COMPILE, home):
                ninja = ["ninja", "-j", str(self.jobs), *record.targets]
                try:
                    self._step(box, log, "build", ninja, record, progress=cell.id)
                except StepFailed as exc:
                    if exc.result is not None and LINK_ERROR.search(exc.result.output):
                        record.stage = Stage.LINK
                    raise
                finally:
                    record.ccache = ccache_delta(before, ccache_stats(box))
            with self._stage(record, Stage.INSTALL, home):
                binaries, refused = collect_artifacts(obj, home / "artifacts")
                if refused:
                    record.error = "artifacts refused (not regular files): " + "; ".join(refused)
                if not binaries:
                    raise StepFailed(
                        join_errors(record.error, "ninja succeeded but produced no qemu-system-* binary")
                    )
                record.artifacts = {"dir": str(home / "artifacts"), "binaries": binaries}
                version = box.exec([f"/build/{binaries[0]}", "--version"])
                record.qemu_version = version.output.splitlines()[0] if version.output else ""
                if version.exit_code != 0:
                    raise StepFailed(f"{binaries[0]} --version failed: {version.output[-400:]}")

    def _patched_tree(self, pristine: Path, queue: patchq.PatchQueue | None, record: BuildRecord) -> Path:
        if queue is None or not queue.patches:
            return pristine
        tree, record.series = patchq.patched_tree(
            self.cache / "patched", pristine, queue, str(record.source["digest"]), self.progress
        )
        return tree

    def _step(
        self,
        box: ContainerSession,
        log: IO[str],
        name: str,
        argv: list[str],
        record: BuildRecord,
        progress: str | None = None,
    ) -> RunResult:
        """Run one build command in ``box``, its output into ``log``; StepFailed on a non-zero exit."""
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        last = [0.0]

        def on_line(line: str) -> None:
            log.write(line + "\n")
            match = PROGRESS.match(line)
            if progress and match and time.monotonic() - last[0] > 15:
                last[0] = time.monotonic()
                self.progress(f"build {progress}: [{match.group(1)}/{match.group(2)}]")

        self.progress(f"{name}: {shlex.join(argv)[:160]}")
        t0 = time.monotonic()
        result = box.exec(argv, workdir="/build", on_line=on_line)
        record.durations[f"{name}_s"] = round(time.monotonic() - t0, 2)
        log.write(f"[exit {result.exit_code}]\n")
        log.flush()
        if result.exit_code != 0:
            raise StepFailed(result=result)
        return result

    # -- the end --------------------------------------------------------------------------------

    def _finish(
        self,
        cell: BuildCell,
        record: BuildRecord,
        home: Path | None,
        verdict: Verdict,
        started: float,
        error: str | None = None,
        output: str = "",
    ) -> BuildOutcome:
        """The one place a build ends: verdict, times, log tail, the record in the cache, the artifact."""
        record.verdict = verdict
        if verdict is Verdict.PASS:
            record.stage = None
        record.finished_at = _now()
        record.durations["total_s"] = round(time.monotonic() - started, 2)
        if error:
            record.error = error
        if output and record.stage not in (Stage.FETCH, Stage.PATCH, Stage.INFRA):
            record.log_tail = output.splitlines()[-40:]
        outcome = BuildOutcome(cell.id, record, home / "build.json" if home else None, None, output)
        if record.key is None:  # failed before it had a home in the cache: the run store alone gets it
            outcome.record_path = None
        outcome.save_record()
        if verdict is Verdict.PASS and home is not None:
            outcome.artifact = self._artifact(cell, record, home)
        return outcome

    def _cache_hit(self, home: Path, cell: BuildCell) -> BuildOutcome | None:
        path = home / "build.json"
        try:
            record = BuildRecord.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if not record.ok or not record.binaries:
            return None
        if not all((home / "artifacts" / "bin" / b).is_file() for b in record.binaries):
            return None
        record.cache_hit = True
        self.progress(f"build {cell.id}: cache hit ({home.name}, built {record.finished_at})")
        return BuildOutcome(cell.id, record, path, self._artifact(cell, record, home))

    def _artifact(self, cell: BuildCell, record: BuildRecord, home: Path) -> Artifact:
        assert record.image is not None
        image = ImageRef(record.image.name, record.image.tag, record.image.id)
        names = record.binaries
        binary = "bin/" + ("qemu-system-x86_64" if "qemu-system-x86_64" in names else names[0])
        return Artifact(cell.id, image, binary, home / "artifacts", record.qemu_version or "")

    def _prebuilt(self, cell: BuildCell) -> BuildOutcome:
        record = BuildRecord(
            cell=cell.id, tree=cell.tree_name, kind="prebuilt", profile=cell.profile_name,
            started_at=_now(), cache_hit=True, stage=Stage.FETCH,
        )  # fmt: skip
        binary = cell.tree.binary or "/usr/bin/qemu-system-x86_64"
        started = time.monotonic()
        try:
            image = self.engine.ensure_image(cell.tree.image)
            record.image = ImageInfo(image.name, image.tag, image.id)
            code, version = version_in_image(self.engine, self.cache / "prebuilt", image, binary)
        except InfraError as exc:
            record.stage, record.hint = Stage.INFRA, exc.hint
            return self._finish(cell, record, None, Verdict.ERROR, started, exc.message, exc.hint or "")
        record.qemu_version = version.splitlines()[0] if version else ""
        record.binary = binary
        if code != 0:
            record.stage = Stage.INSTALL
            return self._finish(
                cell, record, None, Verdict.FAIL, started, f"{binary} --version failed: {version[-400:]}"
            )
        outcome = self._finish(cell, record, None, Verdict.PASS, started)
        outcome.artifact = Artifact(cell.id, image, binary, None, record.qemu_version)
        return outcome
