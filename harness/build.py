"""Configure and compile one (tree, profile) build cell inside a container, with a trustworthy record.

Flow: image -> fetch source -> patch queue -> build key -> cache hit? -> configure -> ninja -> artifacts.

* Build key = sha256 over (source digest, patch-queue digest, configure flags, ninja targets, image id).
  A finished, passing build with the same key is a cache hit and is not rebuilt.
* Layout under the cache: ``builds/<key16>/`` with ``build.json`` (written when the build starts,
  completed when it ends, so it survives a kill), ``reproduce.sh`` (written before the build starts),
  ``build.log``, ``obj/`` (meson build dir) and ``artifacts/{bin,share}``. Patched trees are shared
  under ``patched/<digest16>/``; ccache lives in ``ccache/``.
* The container: non-root uid, source mounted read-only at ``/src``, build dir at ``/build``, ccache at
  ``/ccache`` (fixed paths, so ccache hits across trees: QEMU compiles with ``-g``), no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness import patches as patchq
from harness import triage
from harness.buildbox import (
    BUILD_UID,
    build_env,
    ccache_delta,
    ccache_stats,
    chown_tree,
    collect_artifacts,
    reproduce_script,
    version_in_image,
)
from harness.containers import Engine, ImageRef, Mount, RunResult, file_lock
from harness.errors import HarnessError, InfraError
from harness.matrix import BuildCell
from harness.results import write_json_atomic
from harness.sources import fetch_tree

PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


@dataclass
class Artifact:
    """What a scenario needs to run one QEMU of a build cell."""

    cell_id: str
    image: ImageRef
    binary: str  # path inside the container (built: relative to host_dir)
    host_dir: Path | None  # built artifacts folder to mount; None for prebuilt
    version: str


@dataclass
class BuildOutcome:
    cell_id: str
    record: dict
    record_path: Path | None
    artifact: Artifact | None

    @property
    def ok(self) -> bool:
        return self.record.get("verdict") == "pass"


def build_key(
    source_digest: str, series_digest: str, configure: list[str], targets: list[str], image_id: str
) -> str:
    blob = json.dumps(
        {
            "source": source_digest,
            "series": series_digest,
            "configure": configure,
            "targets": targets,
            "image": image_id,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


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
    ) -> None:
        self.engine = engine
        self.cache = cache_dir
        self.patches_dir = patches_dir
        self.base_dir = base_dir
        self.jobs = jobs or os.cpu_count() or 2
        self.progress = progress

    # -- public ---------------------------------------------------------------------------------

    def build(self, cell: BuildCell) -> BuildOutcome:
        if cell.tree.kind == "prebuilt":
            return self._prebuilt(cell)
        record: dict = {
            "cell": cell.id,
            "tree": cell.tree_name,
            "kind": cell.tree.kind,
            "profile": cell.profile_name,
            "verdict": "running",
            "stage": "fetch",
            "started_at": _now(),
            "durations": {},
        }
        started = time.monotonic()
        try:
            image = self.engine.ensure_image(cell.tree.image)
            record["image"] = {"name": image.name, "tag": image.tag, "id": image.id}
            t0 = time.monotonic()
            source = fetch_tree(
                cell.tree_name,
                cell.tree,
                self.cache,
                engine=self.engine,
                image=image,
                base_dir=self.base_dir,
                progress=self.progress,
            )
            record["durations"]["fetch_s"] = round(time.monotonic() - t0, 2)
            record["source"] = {"digest": source.digest, **source.provenance}
            record["stage"] = "patch"
            queue = self._queue(cell)
        except HarnessError as exc:
            return self._early_failure(cell, record, exc, started)
        profile = cell.profile
        assert profile is not None
        key = build_key(
            source.digest,
            queue.digest if queue else patchq.EMPTY_DIGEST,
            profile.configure,
            profile.targets,
            image.id,
        )
        home = self.cache / "builds" / key[:16]
        with file_lock(home / ".lock"):
            hit = self._cache_hit(home, cell)
            if hit:
                return hit
            record.update(
                {
                    "key": key,
                    "configure": profile.configure,
                    "targets": profile.targets,
                    "series": queue.describe() if queue else None,
                    "cache_hit": False,
                    "log": str(home / "build.log"),
                }
            )
            return self._cold_build(cell, record, home, image, source.path, queue, started)

    # -- steps ----------------------------------------------------------------------------------

    def _queue(self, cell: BuildCell) -> patchq.PatchQueue | None:
        return patchq.load_queue(self.patches_dir / cell.tree.patches) if cell.tree.patches else None

    def _cache_hit(self, home: Path, cell: BuildCell) -> BuildOutcome | None:
        path = home / "build.json"
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        binaries = record.get("artifacts", {}).get("binaries", [])
        if record.get("verdict") != "pass" or not binaries:
            return None
        if not all((home / "artifacts" / "bin" / b).is_file() for b in binaries):
            return None
        record["cache_hit"] = True
        self.progress(f"build {cell.id}: cache hit ({home.name}, built {record.get('finished_at')})")
        return BuildOutcome(cell.id, record, path, self._artifact(cell, record, home))

    def _artifact(self, cell: BuildCell, record: dict, home: Path) -> Artifact:
        image = ImageRef(**record["image"])
        binary = "bin/" + record["artifacts"]["binaries"][0]
        for name in record["artifacts"]["binaries"]:
            if name == "qemu-system-x86_64":
                binary = "bin/" + name
        return Artifact(cell.id, image, binary, home / "artifacts", record.get("qemu_version", ""))

    def _cold_build(
        self,
        cell: BuildCell,
        record: dict,
        home: Path,
        image: ImageRef,
        pristine: Path,
        queue: patchq.PatchQueue | None,
        started: float,
    ) -> BuildOutcome:
        record_path = home / "build.json"
        obj, ccache = home / "obj", self.cache / "ccache"
        for folder in (obj, ccache, home / "artifacts"):
            folder.mkdir(parents=True, exist_ok=True)
        log_path = home / "build.log"
        log = log_path.open("w", encoding="utf-8")
        try:
            source = self._patched_tree(pristine, queue, record)
            record["source_dir"] = str(source)
            if record["series"] is not None and any(
                s["status"] != "applied" for s in record["series"]["statuses"]
            ):
                return self._finish(
                    cell, record, record_path, home, "fail", started, error="a patch did not apply"
                )
            chown_tree(obj, BUILD_UID)
            chown_tree(ccache, BUILD_UID)
            (home / "reproduce.sh").write_text(
                reproduce_script(
                    cell.id, record["key"], image, source, record["configure"], record["targets"], self.jobs
                )
            )
            (home / "reproduce.sh").chmod(0o755)
            write_json_atomic(record_path, record)
            mounts = [Mount(source, "/src", read_only=True), Mount(obj, "/build"), Mount(ccache, "/ccache")]
            with self.engine.session(
                image, mounts=mounts, network=False, user=BUILD_UID, env=build_env(), label=f"build {cell.id}"
            ) as box:
                record["compiler"] = (box.exec(["cc", "--version"]).output.splitlines() or [""])[0]
                before = ccache_stats(box)
                record["stage"] = "configure"
                write_json_atomic(record_path, record)
                result = self._step(box, log, "configure", ["/src/configure", *record["configure"]], record)
                if result.exit_code != 0:
                    return self._finish(cell, record, record_path, home, "fail", started, log_result=result)
                record["stage"] = "compile"
                write_json_atomic(record_path, record)
                ninja = ["ninja", "-j", str(self.jobs), *record["targets"]]
                result = self._step(box, log, "build", ninja, record, progress=cell.id)
                record["ccache"] = ccache_delta(before, ccache_stats(box))
                if result.exit_code != 0:
                    if re.search(r"undefined reference|ld returned|collect2", result.output):
                        record["stage"] = "link"
                    return self._finish(cell, record, record_path, home, "fail", started, log_result=result)
                record["stage"] = "install"
                binaries = collect_artifacts(obj, home / "artifacts")
                if not binaries:
                    return self._finish(
                        cell,
                        record,
                        record_path,
                        home,
                        "fail",
                        started,
                        error="ninja succeeded but produced no qemu-system-* binary",
                    )
                record["artifacts"] = {"dir": str(home / "artifacts"), "binaries": binaries}
                version = box.exec([f"/build/{binaries[0]}", "--version"])
                record["qemu_version"] = version.output.splitlines()[0] if version.output else ""
                if version.exit_code != 0:
                    return self._finish(
                        cell,
                        record,
                        record_path,
                        home,
                        "fail",
                        started,
                        error=f"{binaries[0]} --version failed: {version.output[-400:]}",
                    )
            record["stage"] = None
            return self._finish(cell, record, record_path, home, "pass", started)
        except InfraError as exc:
            record["stage"] = "infra"
            return self._finish(cell, record, record_path, home, "error", started, error=str(exc))
        except OSError as exc:
            record["stage"] = "infra"
            return self._finish(
                cell,
                record,
                record_path,
                home,
                "error",
                started,
                error=f"{exc.strerror or exc} ({exc.filename or home})",
            )
        finally:
            log.close()

    def _patched_tree(self, pristine: Path, queue: patchq.PatchQueue | None, record: dict) -> Path:
        if queue is None or not queue.patches:
            return pristine
        digest = hashlib.sha256(f"{record['source']['digest']} {queue.digest}".encode()).hexdigest()
        target = self.cache / "patched" / digest[:16]
        with file_lock(target.with_suffix(".lock")):
            done = target.with_suffix(".json")
            if target.is_dir() and done.is_file():
                record["series"] = json.loads(done.read_text())
                return target
            self.progress(f"patch: copying tree and applying queue {queue.name} ({len(queue.patches)})")
            staging = target.with_name(target.name + ".tmp")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(pristine, staging, symlinks=True)
            result = patchq.apply_queue(queue, staging)
            record["series"] = result.to_json()
            if not result.ok:
                shutil.rmtree(staging, ignore_errors=True)
                return pristine
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            write_json_atomic(done, record["series"])
            return target

    def _step(
        self, box, log, name: str, argv: list[str], record: dict, progress: str | None = None
    ) -> RunResult:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        state = {"last": 0.0}

        def on_line(line: str) -> None:
            log.write(line + "\n")
            match = PROGRESS.match(line)
            if progress and match and time.monotonic() - state["last"] > 15:
                state["last"] = time.monotonic()
                self.progress(f"build {progress}: [{match.group(1)}/{match.group(2)}]")

        self.progress(f"{name}: {shlex.join(argv)[:160]}")
        t0 = time.monotonic()
        result = box.exec(argv, workdir="/build", on_line=on_line)
        record["durations"][f"{name}_s"] = round(time.monotonic() - t0, 2)
        log.write(f"[exit {result.exit_code}]\n")
        log.flush()
        return result

    def _finish(
        self,
        cell: BuildCell,
        record: dict,
        path: Path,
        home: Path,
        verdict: str,
        started: float,
        log_result: RunResult | None = None,
        error: str | None = None,
    ) -> BuildOutcome:
        record["verdict"] = verdict
        record["finished_at"] = _now()
        record["durations"]["total_s"] = round(time.monotonic() - started, 2)
        if error:
            record["error"] = error
        if log_result is not None:
            record["log_tail"] = log_result.output.splitlines()[-40:]
        if verdict != "pass":  # triage (issue 5): cause + suggested matrix change
            self._triage(cell, record, log_result.output if log_result else "")
        try:
            write_json_atomic(path, record)
        except OSError as exc:  # e.g. the cache's disk is full: the run store still gets the record
            note = f"could not write {path}: {exc.strerror or exc}"
            record["error"] = f"{record['error']}; {note}" if record.get("error") else note
            return BuildOutcome(cell.id, record, None, None)
        artifact = self._artifact(cell, record, home) if verdict == "pass" else None
        return BuildOutcome(cell.id, record, path, artifact)

    def _early_failure(
        self, cell: BuildCell, record: dict, exc: HarnessError, started: float
    ) -> BuildOutcome:
        record["verdict"] = "error" if isinstance(exc, InfraError) else "fail"
        if isinstance(exc, InfraError):
            record["stage"] = "infra"
        record["error"] = exc.message
        record["hint"] = exc.hint
        record["finished_at"] = _now()
        record["durations"]["total_s"] = round(time.monotonic() - started, 2)
        self._triage(cell, record, exc.hint or "")  # triage (issue 5)
        return BuildOutcome(cell.id, record, None, None)

    # -- triage (issue 5) -------------------------------------------------------------------------

    def _triage(self, cell: BuildCell, record: dict, output: str) -> None:
        """Store ``record["triage"]`` = {stage, cause, explanation, remedy, rule, evidence, change, ...}."""
        try:
            distro = triage.image_distro(self.engine.containers_dir, cell.tree.image)
            found = triage.classify(
                record.get("stage"),
                output,
                error=str(record.get("error") or ""),
                distro=distro,
                image=cell.tree.image,
                series=record.get("series"),
            )
        except (HarnessError, OSError) as exc:  # a broken rules file must not lose the build record
            record["triage"] = {
                "stage": record.get("stage"),
                "cause": "triage failed",
                "explanation": str(exc),
            }
            return
        record["triage"] = found.to_json()
        if found.stage == "infra":  # disk full, engine trouble: not the tree's fault
            record["stage"] = "infra"
            record["verdict"] = "error"

    def _prebuilt(self, cell: BuildCell) -> BuildOutcome:
        record: dict = {
            "cell": cell.id,
            "tree": cell.tree_name,
            "kind": "prebuilt",
            "profile": "prebuilt",
            "started_at": _now(),
            "cache_hit": True,
            "durations": {},
        }
        binary = cell.tree.binary or "/usr/bin/qemu-system-x86_64"
        try:
            image = self.engine.ensure_image(cell.tree.image)
            record["image"] = {"name": image.name, "tag": image.tag, "id": image.id}
            code, version = version_in_image(self.engine, self.cache / "prebuilt", image, binary)
        except HarnessError as exc:
            return self._early_failure(cell, record, exc, time.monotonic())
        record["qemu_version"] = version.splitlines()[0] if version else ""
        record["binary"] = binary
        record["verdict"] = "pass" if code == 0 else "fail"
        record["stage"] = None if code == 0 else "install"
        if code != 0:
            record["error"] = f"{binary} --version failed: {version[-400:]}"
        record["finished_at"] = _now()
        artifact = Artifact(cell.id, image, binary, None, record["qemu_version"]) if code == 0 else None
        return BuildOutcome(cell.id, record, None, artifact)
