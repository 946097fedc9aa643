"""The harness's one vocabulary: verdicts, build stages, modes, accelerators, cell ids.

Every layer speaks these words, the scenario container included, so they live here, in the
standard-library-only package that the container gets. The enums are ``str``-valued: JSON written with
them reads exactly as before (``"verdict": "pass"``), and a value read back from JSON converts with
``Verdict(text)``.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Verdict(StrEnum):
    """The outcome of a cell (scenario or build)."""

    PASS = "pass"  # every check held / the build produced a working binary
    FAIL = "fail"  # QEMU (or the tree) did something wrong: a finding
    UNSUPPORTED = "unsupported"  # QEMU lacks what the cell needs; QEMU's own words in the reason
    ERROR = "error"  # the cell could not be judged (harness, configuration or infrastructure)
    NOT_RUN = "not-run"  # planned, never started (an interrupted or partial run)
    RUNNING = "running"  # a build record written while its build is under way

    @property
    def ok(self) -> bool:
        """Whether the cell counts as green for exit codes: pass, or unsupported."""
        return self in (Verdict.PASS, Verdict.UNSUPPORTED)


SCENARIO_VERDICTS: tuple[Verdict, ...] = (
    Verdict.PASS,
    Verdict.FAIL,
    Verdict.UNSUPPORTED,
    Verdict.ERROR,
    Verdict.NOT_RUN,
)
BUILD_VERDICTS: tuple[Verdict, ...] = (Verdict.PASS, Verdict.FAIL, Verdict.ERROR)


class CheckVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # the check does not apply to this mode


class Stage(StrEnum):
    """Where a build stopped. ``infra`` is never the tree's fault (engine, disk, image)."""

    FETCH = "fetch"
    PATCH = "patch"
    CONFIGURE = "configure"
    COMPILE = "compile"
    LINK = "link"
    INSTALL = "install"
    INFRA = "infra"


class Mode(StrEnum):
    """A live-update mode (``boot`` is the baseline without any migration)."""

    BOOT = "boot"
    NORMAL = "normal"
    CPR_REBOOT = "cpr-reboot"
    CPR_TRANSFER = "cpr-transfer"
    CPR_EXEC = "cpr-exec"

    @property
    def migrates(self) -> bool:
        return self is not Mode.BOOT

    @property
    def cpr(self) -> bool:
        """A CPR mode (QEMU's MigMode other than ``normal``)."""
        return self.value.startswith("cpr-")


MODES: tuple[Mode, ...] = tuple(Mode)
MIGRATION_MODES: tuple[Mode, ...] = tuple(m for m in Mode if m.migrates)


class Accel(StrEnum):
    TCG = "tcg"
    KVM = "kvm"


class Side(StrEnum):
    """Which QEMU of a scenario: the one the guest leaves, or the one it moves to."""

    SOURCE = "source"
    DESTINATION = "destination"


_SEP = "__"
_ESCAPED = re.compile(r"%(25|5F)")


class CellId(str):
    """A cell's id, e.g. ``upstream-10.2/lean`` (build) or ``upstream-10.2/lean/cpr-exec/tcg`` (scenario).

    Parts are separated by ``/``. :meth:`folder` maps an id to one folder name and :meth:`from_folder`
    maps it back; the mapping is injective (``_`` and ``%`` inside a part are escaped, and parts are
    joined with ``__``), so ``a__b/c`` and ``a/b__c`` never share a folder. Ids whose names hold no
    ``_`` keep the folder names of earlier releases (``upstream-10.2__lean__normal__tcg``).
    """

    __slots__ = ()

    def __new__(cls, value: str) -> CellId:
        text = str(value)
        parts = text.split("/")
        if not text or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
            raise ValueError(f"{text!r} is not a cell id (non-empty parts separated by '/')")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, *parts: str) -> CellId:
        return cls("/".join(parts))

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.split("/"))

    def folder(self) -> str:
        """The one folder name of this id (see the class docstring)."""
        return _SEP.join(p.replace("%", "%25").replace("_", "%5F") for p in self.parts)

    @classmethod
    def from_folder(cls, name: str) -> CellId:
        """Inverse of :meth:`folder`. Raises ValueError for a name no id maps to."""
        parts = name.split(_SEP)
        decoded = []
        for p in parts:
            if "_" in p:
                raise ValueError(f"{name!r} is not a cell folder name")
            decoded.append(_ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "_", p))
        cell = cls("/".join(decoded))
        if cell.folder() != name:
            raise ValueError(f"{name!r} is not a cell folder name")
        return cell
