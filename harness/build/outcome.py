"""What a build produced, as the later stages see it: the :class:`BuildOutcome` (record, where it is
stored, the :class:`Artifact` a scenario runs) and the build key that names a build in the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.engine.containers import ImageRef, RunResult
from harness.live.files import write_json_atomic
from harness.store.build_record import BuildRecord


def join_errors(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


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
    record: BuildRecord
    record_path: Path | None  # build.json in the cache (None: not written there)
    artifact: Artifact | None
    failure_output: str = ""  # the failing step's whole output (for triage), or the error's hint

    @property
    def ok(self) -> bool:
        return self.record.ok

    def save_record(self) -> None:
        """Write the (annotated) record back into the cache; a full disk there is noted, not raised."""
        if self.record_path is None:
            return
        try:
            write_json_atomic(self.record_path, self.record.to_json())
        except OSError as exc:
            self.record.error = join_errors(
                self.record.error, f"could not write {self.record_path}: {exc.strerror}"
            )
            self.record_path = None


class StepFailed(Exception):
    """A build step failed: the tree's (or the profile's) problem, at the record's current stage."""

    def __init__(self, error: str | None = None, result: RunResult | None = None) -> None:
        super().__init__(error or "step failed")
        self.error, self.result = error, result


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
