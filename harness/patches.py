"""Patch queues applied to a tree before configure.

A queue is a folder ``patches/<name>/``. Supported form today: **quilt** (a ``series`` file listing
patch files, applied with ``-p1``; blank lines and ``#`` comments ignored; a ``-pN`` option after the
name is honoured). Each patch is checked before it is applied: a patch that names a path outside the
tree (absolute, or with ``..``) is refused. Application uses GNU ``patch`` with argv lists.

The queue digest (names + bytes of every listed patch, in order) is part of the build key.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from harness.errors import PatchError

DIFF_PATH = re.compile(r"^(?:---|\+\+\+) (\S+)")


@dataclass
class PatchFile:
    name: str
    path: Path
    strip: int = 1


@dataclass
class PatchQueue:
    name: str
    form: str
    patches: list[PatchFile]
    digest: str

    def describe(self) -> dict:
        return {
            "name": self.name,
            "form": self.form,
            "digest": self.digest,
            "patches": [p.name for p in self.patches],
        }


@dataclass
class PatchStatus:
    name: str
    status: str  # applied | failed | skipped
    detail: str = ""


@dataclass
class QueueResult:
    queue: dict
    statuses: list[PatchStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status == "applied" for s in self.statuses)

    def to_json(self) -> dict:
        return {**self.queue, "statuses": [asdict(s) for s in self.statuses]}


EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()


def load_queue(folder: Path) -> PatchQueue:
    """Read ``folder/series`` (quilt) into a :class:`PatchQueue`."""
    series = folder / "series"
    if not series.is_file():
        raise PatchError(f"{folder}: no 'series' file", hint="list the patches, one per line, in series")
    patches: list[PatchFile] = []
    digest = hashlib.sha256()
    for number, raw in enumerate(series.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        strip = 1
        for opt in opts:
            if re.fullmatch(r"-p\d+", opt):
                strip = int(opt[2:])
            else:
                raise PatchError(f"{series}:{number}: unknown option {opt!r}", hint="only -pN is supported")
        path = folder / name
        if not path.is_file() or ".." in PurePosixPath(name).parts:
            raise PatchError(f"{series}:{number}: patch {name!r} not found in {folder}")
        check_paths(path, strip)
        digest.update(name.encode() + b"\0" + str(strip).encode() + b"\0" + path.read_bytes())
        patches.append(PatchFile(name=name, path=path, strip=strip))
    hexdigest = "sha256:" + digest.hexdigest() if patches else EMPTY_DIGEST
    return PatchQueue(name=folder.name, form="quilt", patches=patches, digest=hexdigest)


def check_paths(patch: Path, strip: int) -> None:
    """Refuse a patch whose file names escape the tree after stripping ``strip`` components."""
    for number, line in enumerate(patch.read_text(errors="replace").splitlines(), start=1):
        match = DIFF_PATH.match(line)
        if not match or match.group(1) == "/dev/null":
            continue
        name = PurePosixPath(match.group(1))
        parts = name.parts[strip:] if not name.is_absolute() else name.parts
        if name.is_absolute() or ".." in parts or not parts:
            raise PatchError(
                f"{patch}:{number}: refers to {match.group(1)!r}, outside the tree",
                hint="patches may only touch files inside the tree they are applied to",
            )


def apply_queue(queue: PatchQueue, tree: Path) -> QueueResult:
    """Apply every patch in order; after the first failure the rest are 'skipped'."""
    result = QueueResult(queue=queue.describe())
    failed = False
    for patch in queue.patches:
        if failed:
            result.statuses.append(PatchStatus(patch.name, "skipped", "an earlier patch failed"))
            continue
        argv = [
            "patch",
            f"-p{patch.strip}",
            "--batch",
            "--forward",
            "--no-backup-if-mismatch",
            "-d",
            str(tree),
            "-i",
            str(patch.path),
        ]
        dry = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True)
        if dry.returncode != 0:
            failed = True
            result.statuses.append(PatchStatus(patch.name, "failed", _rejected(dry.stdout + dry.stderr)))
            continue
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            failed = True
            result.statuses.append(PatchStatus(patch.name, "failed", _rejected(done.stdout + done.stderr)))
            continue
        result.statuses.append(PatchStatus(patch.name, "applied", done.stdout.strip()))
    return result


def _rejected(output: str) -> str:
    """The lines of patch's output that say which file and hunk did not apply."""
    keep = [
        line
        for line in output.splitlines()
        if line.startswith(("checking file", "patching file", "Hunk", "Reversed", "can't find"))
        or "FAILED" in line
        or "malformed" in line
    ]
    return "\n".join(keep or output.splitlines()[-10:])
