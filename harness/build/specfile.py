"""The patch list of an RPM ``.spec`` file, as ``%autosetup -p1`` applies it.

Only what patch application needs is read: ``PatchNNNN:`` tags (``Patch:`` without a number takes the
next number, as rpm >= 4.15 does), ``Name``/``Version``/``Release`` and simple ``%global``/``%define``
macros (so ``Patch1: %{name}-%{version}-fix.patch`` resolves), and the ``-pN`` of ``%autosetup`` (default
``-p1``). ``%patchN`` lines are irrelevant with ``%autosetup`` (it applies every ``PatchNNNN`` in number
order) and are ignored. Conditionals (``%if``) are not evaluated: every ``Patch`` tag counts, which is
what src-openEuler's ``qemu.spec`` needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PatchError

_TAG = re.compile(r"^(Patch)(\d*)\s*:\s*(\S+)\s*$", re.I)
_HEADER = re.compile(r"^(Name|Version|Release)\s*:\s*(\S+)\s*$", re.I)
_MACRO_DEF = re.compile(r"^%(?:global|define)\s+(\w+)\s+(.+?)\s*$")
_MACRO_USE = re.compile(r"%\{\??(\w+)\}|%(\w+)")
_AUTOSETUP = re.compile(r"^%autosetup\b(.*)$")


@dataclass(frozen=True)
class SpecPatch:
    number: int
    name: str  # file name, macros expanded
    line: int  # 1-based line of the tag in the spec


@dataclass(frozen=True)
class SpecPatches:
    spec: Path
    strip: int
    patches: list[SpecPatch]  # in number order (the order %autosetup applies them)


def parse_spec(spec: Path) -> SpecPatches:
    """Read ``spec`` and return its patches in application order. Raises PatchError naming the line."""
    macros: dict[str, str] = {"nil": ""}
    found: list[SpecPatch] = []
    numbers: dict[int, int] = {}
    strip = 1
    next_number = 0
    for lineno, raw in enumerate(spec.read_text(errors="replace").splitlines(), start=1):
        line = raw.strip()
        if match := _MACRO_DEF.match(line):
            macros[match.group(1)] = _expand(match.group(2), macros, spec, lineno)
        elif match := _HEADER.match(line):
            macros.setdefault(match.group(1).lower(), _expand(match.group(2), macros, spec, lineno))
        elif match := _AUTOSETUP.match(line):
            opts = re.search(r"(?:^|\s)-p\s*(\d+)", match.group(1))
            strip = int(opts.group(1)) if opts else 1
        elif match := _TAG.match(line):
            number = int(match.group(2)) if match.group(2) else next_number
            if number in numbers:
                raise PatchError(
                    f"{spec}:{lineno}: Patch{number} is defined twice (first on line {numbers[number]})",
                    hint="give every Patch tag its own number",
                )
            numbers[number] = lineno
            next_number = number + 1
            name = _expand(match.group(3), macros, spec, lineno)
            if "/" in name and "://" in name:
                name = name.rsplit("/", 1)[1]  # a URL: rpmbuild takes the file name from SOURCES
            found.append(SpecPatch(number, name, lineno))
    found.sort(key=lambda p: p.number)
    return SpecPatches(spec=spec, strip=strip, patches=found)


def _expand(text: str, macros: dict[str, str], spec: Path, lineno: int) -> str:
    for _ in range(10):
        if "%" not in text:
            return text

        def one(match: re.Match[str]) -> str:
            key = match.group(1) or match.group(2)
            if key in macros:
                return macros[key]
            if match.group(0).startswith("%{?"):
                return ""  # %{?macro}: empty when undefined
            raise PatchError(
                f"{spec}:{lineno}: macro %{{{key}}} is not defined in the spec",
                hint="define it with %global, or write the patch file name literally",
            )

        text = _MACRO_USE.sub(one, text)
    raise PatchError(f"{spec}:{lineno}: macros nest too deeply", hint="simplify the Patch tag")
