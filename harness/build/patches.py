"""Patch queues applied to a tree before configure, in the three forms maintainers keep them.

A queue is a folder ``patches/<name>/``. Its form is detected from the folder's contents (or passed as
``form=`` to :func:`load_queue`):

* **quilt** -- the folder has a ``series`` file: the patches it lists, in order (``-p1``; blank lines and
  ``#`` comments ignored; a ``-pN`` option after the name is honoured).
* **spec** -- no ``series`` but exactly one ``*.spec``: its ``PatchNNNN:`` files, in number order, with the
  ``-pN`` of ``%autosetup`` (default 1), as ``%autosetup`` applies them (see :mod:`harness.specfile`).
* **mbox** -- otherwise: every ``*.patch``, ``*.mbox`` and ``*.eml`` file in name order (as ``git
  format-patch`` numbers them), each split into its mail messages. On a git work tree they are applied
  with ``git am`` (authorship, date and message kept as commits); on any other tree with GNU ``patch``.

Every patch is checked before anything is applied: one that names a path outside the tree (absolute, or
with ``..``, quoted or not) is refused (:mod:`harness.build.patchpaths`), and right before it is
applied, one whose files lead through a symlink of the tree out of it fails. Application uses argv
lists, never a shell. Each patch gets a status
``applied``, ``failed`` (with patch's messages and the text of every rejected hunk) or ``skipped``
(after the first failure).

The queue digest (form, names, strip levels and bytes of every patch, in order) is part of the build key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

from harness.build import patchpaths
from harness.build.specfile import parse_spec
from harness.engine.locks import file_lock
from harness.errors import PatchError
from harness.live.files import write_json_atomic

FORMS = ("quilt", "mbox", "spec")
MBOX_SUFFIXES = (".patch", ".mbox", ".eml", ".diff")
MBOX_FROM = re.compile(rb"^From \S+ .*\d{4}\s*$|^From [0-9a-f]{40} ", re.M)
HUNK_FAILED = re.compile(r"Hunk #(\d+) FAILED")
FILE_LINE = re.compile(r"^(?:checking|patching) file (.+?)\s*$")
GIT_IDENTITY = {
    "GIT_COMMITTER_NAME": "cpr-harness",
    "GIT_COMMITTER_EMAIL": "cpr-harness@localhost",
}


@dataclass
class PatchFile:
    name: str
    path: Path
    strip: int = 1
    data: bytes = b""  # the patch (one mail message for mbox); read from ``path`` when empty
    author: str = ""  # mbox: the From: header
    subject: str = ""

    def content(self) -> bytes:
        return self.data or self.path.read_bytes()


@dataclass
class PatchQueue:
    name: str
    form: str
    patches: list[PatchFile]
    digest: str

    def describe(self) -> dict[str, Any]:
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
    rejects: list[dict[str, Any]] = field(
        default_factory=list
    )  # {"file", "hunk", "text"} of each rejected hunk
    author: str = ""


@dataclass
class QueueResult:
    queue: dict[str, Any]
    statuses: list[PatchStatus] = field(default_factory=list)
    method: str = "patch"  # patch | git am

    @property
    def ok(self) -> bool:
        return all(s.status == "applied" for s in self.statuses)

    def to_json(self) -> dict[str, Any]:
        return {**self.queue, "method": self.method, "statuses": [asdict(s) for s in self.statuses]}


EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()


def detect_form(folder: Path) -> str:
    """``quilt`` when ``series`` exists, ``spec`` when one ``*.spec`` does, else ``mbox``."""
    if (folder / "series").is_file():
        return "quilt"
    return "spec" if list(folder.glob("*.spec")) else "mbox"


def load_queue(folder: Path, form: str | None = None) -> PatchQueue:
    """Read the queue in ``folder`` (form detected unless given). Raises PatchError naming file:line."""
    if not folder.is_dir():
        raise PatchError(
            f"{folder}: patch queue folder not found", hint="create it, or fix the tree's patches"
        )
    form = form or detect_form(folder)
    if form == "quilt":
        patches = _load_quilt(folder)
    elif form == "spec":
        patches = _load_spec(folder)
    elif form == "mbox":
        patches = _load_mbox(folder)
    else:
        raise PatchError(
            f"{folder}: unknown patch queue form {form!r}", hint=f"use one of {', '.join(FORMS)}"
        )
    digest = hashlib.sha256()
    if form != "quilt":  # quilt keeps its historical digest (build keys of existing trees stay valid)
        digest.update(f"form {form}\0".encode())
    for p in patches:
        check_text(p.content().decode(errors="replace"), p.strip, f"{folder / p.name}")
        digest.update(p.name.encode() + b"\0" + str(p.strip).encode() + b"\0" + p.content())
    hexdigest = "sha256:" + digest.hexdigest() if patches else EMPTY_DIGEST
    return PatchQueue(name=folder.name, form=form, patches=patches, digest=hexdigest)


def _load_quilt(folder: Path) -> list[PatchFile]:
    series = folder / "series"
    if not series.is_file():
        raise PatchError(f"{folder}: no 'series' file", hint="list the patches, one per line, in series")
    patches: list[PatchFile] = []
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
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts or not path.is_file():
            raise PatchError(f"{series}:{number}: patch {name!r} not found in {folder}")
        patches.append(PatchFile(name=name, path=path, strip=strip))
    return patches


def _load_spec(folder: Path) -> list[PatchFile]:
    specs = sorted(folder.glob("*.spec"))
    if len(specs) != 1:
        names = ", ".join(p.name for p in specs)
        raise PatchError(
            f"{folder}: {len(specs)} spec files ({names})", hint="keep exactly one .spec per queue"
        )
    parsed = parse_spec(specs[0])
    patches = []
    for sp in parsed.patches:
        path = folder / sp.name
        if PurePosixPath(sp.name).is_absolute() or ".." in PurePosixPath(sp.name).parts or not path.is_file():
            raise PatchError(
                f"{specs[0]}:{sp.line}: Patch{sp.number} file {sp.name!r} not found in {folder}",
                hint="put the spec's patch files beside it (as in the package's git repository)",
            )
        patches.append(PatchFile(name=sp.name, path=path, strip=parsed.strip))
    return patches


def _load_mbox(folder: Path) -> list[PatchFile]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in MBOX_SUFFIXES)
    if not files and any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir()):
        raise PatchError(
            f"{folder}: no series file, no .spec and no *.patch/*.mbox files",
            hint="add a quilt 'series' file, an RPM .spec, or git format-patch files",
        )
    patches = []
    for path in files:
        messages = split_mbox(path.read_bytes())
        for index, message in enumerate(messages, start=1):
            headers = BytesHeaderParser().parsebytes(message)
            name = path.name if len(messages) == 1 else f"{path.name}#{index}"
            author = str(headers.get("From", "") or "")
            subject = " ".join(str(headers.get("Subject", "") or "").split())
            patches.append(PatchFile(name, path, 1, message, author, subject))
    return patches


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox (``From `` separator lines); a plain patch is one message."""
    starts = [m.start() for m in MBOX_FROM.finditer(data)]
    if not starts:
        return [data] if data.strip() else []
    if starts[0] != 0 and data[: starts[0]].strip():
        starts.insert(0, 0)
    bounds = [*starts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if data[a:b].strip()]


def check_paths(patch: Path, strip: int) -> None:
    """Refuse a patch file whose file names escape the tree after stripping ``strip`` components."""
    check_text(patch.read_text(errors="replace"), strip, str(patch))


def check_text(text: str, strip: int, where: str) -> None:
    """Refuse patch text naming a path outside the tree (see :mod:`harness.build.patchpaths`)."""
    patchpaths.check_text(text, strip, where)


def patched_tree(
    patched_dir: Path, pristine: Path, queue: PatchQueue, source_digest: str, progress: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    """The tree ``pristine`` with ``queue`` applied, shared under ``patched_dir/<digest16>/`` (made once,
    under a lock, by an atomic rename), and the queue's statuses. When a patch fails, the pristine tree
    is returned with the statuses saying which (nothing half-patched is kept)."""
    digest = hashlib.sha256(f"{source_digest} {queue.digest}".encode()).hexdigest()
    target = patched_dir / digest[:16]
    with file_lock(target.with_suffix(".lock")):
        done = target.with_suffix(".json")
        if target.is_dir() and done.is_file():
            return target, json.loads(done.read_text())
        progress(f"patch: copying tree and applying queue {queue.name} ({len(queue.patches)})")
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(pristine, staging, symlinks=True)
        result = apply_queue(queue, staging)
        series = result.to_json()
        if not result.ok:
            shutil.rmtree(staging, ignore_errors=True)
            return pristine, series
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        write_json_atomic(done, series)
        return target, series


def apply_queue(queue: PatchQueue, tree: Path) -> QueueResult:
    """Apply every patch in order; after the first failure the rest are 'skipped'.

    mbox queues on a git work tree go through ``git am`` (one commit per message, authorship kept)."""
    use_git = queue.form == "mbox" and (tree / ".git").exists()
    result = QueueResult(queue=queue.describe(), method="git am" if use_git else "patch")
    failed = False
    for patch in queue.patches:
        if failed:
            result.statuses.append(
                PatchStatus(patch.name, "skipped", "an earlier patch failed", [], patch.author)
            )
            continue
        try:
            patchpaths.check_tree(patch.content().decode(errors="replace"), patch.strip, tree, patch.name)
        except PatchError as exc:
            status = PatchStatus(patch.name, "failed", exc.message, [], patch.author)
        else:
            status = _git_am(patch, tree) if use_git else _patch(patch, tree)
        failed = status.status != "applied"
        result.statuses.append(status)
    return result


def _patch_argv(patch: PatchFile, tree: Path) -> list[str]:
    return ["patch", f"-p{patch.strip}", "--batch", "--forward", "--no-backup-if-mismatch", "-d", str(tree)]


def _patch(patch: PatchFile, tree: Path) -> PatchStatus:
    argv = _patch_argv(patch, tree)
    data = patch.content()
    for run in ([*argv, "--dry-run"], argv):
        done = subprocess.run(run, input=data, capture_output=True)
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            return _failed(patch, output)
    return PatchStatus(patch.name, "applied", output.strip(), [], patch.author)


def _git_am(patch: PatchFile, tree: Path) -> PatchStatus:
    git = ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-C", str(tree)]
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(
        [*git, "am", "--quiet", f"-p{patch.strip}"], input=patch.content(), capture_output=True, env=env
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        subprocess.run([*git, "am", "--abort"], capture_output=True, env=env)
        dry = subprocess.run(
            [*_patch_argv(patch, tree), "--dry-run"], input=patch.content(), capture_output=True
        )
        status = _failed(patch, (dry.stdout + dry.stderr).decode(errors="replace"))
        status.detail = "git am: " + " ".join(output.split())[:400] + "\n" + status.detail
        return status
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, env=env)
    return PatchStatus(patch.name, "applied", f"commit {head.stdout.strip()}", [], patch.author)


def _failed(patch: PatchFile, output: str) -> PatchStatus:
    rejects = rejected_hunks(patch.content().decode(errors="replace"), patch.strip, output)
    detail = _rejected(output)
    for r in rejects:
        detail += f"\nrejected hunk #{r['hunk']} of {r['file']}:\n{r['text']}"
    return PatchStatus(patch.name, "failed", detail, rejects, patch.author)


def rejected_hunks(text: str, strip: int, output: str) -> list[dict[str, Any]]:
    """The hunks GNU patch reported as FAILED (``output``), with their text taken from the patch."""
    wanted: list[tuple[str, int]] = []
    current = ""
    for line in output.splitlines():
        if match := FILE_LINE.match(line):
            current = match.group(1).strip("'\"")
        elif (match := HUNK_FAILED.search(line)) and current:
            wanted.append((current, int(match.group(1))))
    hunks = _hunks_by_file(text, strip)
    return [
        {"file": name, "hunk": n, "text": hunks[name][n - 1]}
        for name, n in wanted
        if name in hunks and 0 < n <= len(hunks[name])
    ]


def _hunks_by_file(text: str, strip: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    name = ""
    for line in text.splitlines():
        if line.startswith("+++ "):
            raw = line[4:].split("\t")[0].strip()
            name = "/".join(PurePosixPath(raw).parts[strip:])
            out.setdefault(name, [])
            current = None
        elif line.startswith("@@ ") and name:
            current = [line]
            out[name].append("")
        elif current is not None and line[:1] in (" ", "+", "-", "\\"):
            current.append(line)
        else:
            current = None
        if current is not None and name:
            out[name][-1] = "\n".join(current)
    return out


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
