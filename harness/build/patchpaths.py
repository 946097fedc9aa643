"""Which files a patch touches, read the way GNU patch and git read them, and whether they stay inside
the tree.

A patch names files in its headers: unified (``--- a/f`` + ``+++ b/f``), context (``*** a/f`` +
``--- b/f``), git's ``diff --git a/f b/f`` and ``rename``/``copy from|to``. Names may be C-quoted
(``"a/\\056\\056/f"``, as git writes unusual names, and as GNU patch reads them). Lines inside a hunk are
never headers: hunks are followed by their line counts, so a removed line ``-- x`` (``--- x`` in the
hunk) is content, as is a context diff's ``--- 1,4 ----``.

:func:`check_text` refuses a name that is absolute, has ``..`` or is empty after stripping ``-pN``;
:func:`check_tree` refuses, on the tree about to be patched, a name whose existing folders or file lead
through a symlink out of the tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from harness.errors import PatchError

UNIFIED_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
CONTEXT_RANGE = re.compile(r"^(?:\*\*\*|---) \d+(?:,\d+)? (?:\*\*\*\*|----)\s*$")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
GIT_META = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
HINT = "patches may only touch files inside the tree they are applied to"


def unquote(name: str) -> str:
    """A C-quoted name (``"a/\\303\\251"``) decoded as git and GNU patch do; others unchanged."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        elif re.match(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out += body[i + 1].encode("utf-8", "surrogateescape")
            i += 2
    return out.decode("utf-8", "surrogateescape")


def _header_names(rest: str) -> list[str]:
    """The name(s) a header line may mean: quoted, or up to a tab (timestamp), or up to a space."""
    rest = rest.rstrip("\n")
    if quoted := QUOTED.match(rest):
        return [unquote(quoted.group(0))]
    tab = rest.split("\t", 1)[0].rstrip()
    return list(dict.fromkeys([tab, tab.split(" ", 1)[0]]))


def _git_names(rest: str) -> list[str]:
    """``a/x b/y`` of ``diff --git``, with quoted names."""
    tokens = re.findall(QUOTED.pattern + r"|\S+", rest)
    if len(tokens) != 2 and '"' not in rest:
        return []  # unquoted names with spaces: ambiguous here; the ---/+++ lines name the files
    return [unquote(t) for t in tokens[:2]]


def _file_header(line: str, nxt: str) -> bool:
    """A unified (``---``/``+++``) or context (``***``/``---``) header pair starts at ``line``."""
    if line.startswith("--- ") and nxt.startswith("+++ "):
        return True
    return line.startswith("*** ") and nxt.startswith("--- ") and not CONTEXT_RANGE.match(line)


def names(text: str) -> Iterator[tuple[int, str, int]]:
    """Every file name in the patch's headers: (line number, name, how many components ``-p`` strips:
    ``-1`` for the patch's own strip level, ``0`` for git's rename/copy lines)."""
    lines = text.splitlines()
    old_left = new_left = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if old_left > 0 or new_left > 0:  # inside a unified hunk: content, never a header
            tag = line[:1]
            if tag in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            elif tag != "\\":
                old_left = new_left = 0
                continue  # a malformed hunk ended early: read this line again as a header
            i += 1
            continue
        if match := UNIFIED_HUNK.match(line):
            old_left, new_left = int(match.group(1) or 1), int(match.group(2) or 1)
        elif _file_header(line, nxt):
            for n, rest in ((i, line[4:]), (i + 1, nxt[4:])):
                yield from ((n + 1, name, -1) for name in _header_names(rest))
            i += 1
        elif line.startswith("diff --git "):
            yield from ((i + 1, name, -1) for name in _git_names(line[len("diff --git ") :]))
        elif match := GIT_META.match(line):
            yield i + 1, unquote(match.group(1).strip()), 0
        i += 1


def relative(name: str, strip: int) -> PurePosixPath | None:
    """``name`` after stripping ``strip`` components; None when absolute, with ``..`` or empty."""
    path = PurePosixPath(name)
    if path.is_absolute():
        return None
    parts = [p for p in path.parts if p != "."][strip:]
    if not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def _each(text: str, strip: int) -> Iterator[tuple[int, str, PurePosixPath | None]]:
    for number, name, level in names(text):
        if name != "/dev/null":
            yield number, name, relative(name, strip if level < 0 else level)


def check_text(text: str, strip: int, where: str) -> None:
    """Refuse patch text naming a path outside the tree (absolute, ``..``, quoted or not)."""
    for number, name, rel in _each(text, strip):
        if rel is None:
            raise PatchError(f"{where}:{number}: refers to {name!r}, outside the tree", hint=HINT)


def check_tree(text: str, strip: int, tree: Path, where: str) -> None:
    """Refuse patch text whose files, in ``tree`` as it is now, lead through a symlink out of it."""
    root = Path(os.path.realpath(tree))
    for number, name, rel in _each(text, strip):
        if rel is None:
            raise PatchError(f"{where}:{number}: refers to {name!r}, outside the tree", hint=HINT)
        real = Path(os.path.realpath(tree / rel))
        if real != root and root not in real.parents:
            raise PatchError(
                f"{where}:{number}: {name!r} leads through a symlink of the tree to {real}, outside it",
                hint=HINT,
            )
