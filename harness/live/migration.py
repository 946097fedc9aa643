"""Migration option sets: the capabilities and parameters a matrix adds to every mode's recipe.

A matrix names sets under ``migration:`` (docs/matrix.md, "Migration option sets"); the host runner
hands the cell's set to the driver as a :class:`MigrationOptions`. The recipe applies it on both sides
(the source before ``migrate``, the destination before ``migrate-incoming``), after its own options
(``mode``, ``cpr-exec-command``, ``x-ignore-shared``), which a set may not touch.

Whether a QEMU accepts a set with a mode is QEMU's to say, never a table of versions: a QMP error to a
command the set changes (setting the set, ``migrate``, ``migrate-incoming``) is QEMU refusing the
combination, and the cell is ``unsupported`` with QEMU's text (:func:`refusal`). A combination QEMU
accepts and then fails (migration status ``failed``, a damaged guest) stays a ``fail``. The ``default``
set changes nothing, and QEMU's errors in its cells keep their usual verdicts. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

from harness.live.errors import QmpCommandError, SpecError, Unsupported
from harness.live.qemu import Qemu

DEFAULT = "default"
NAME = re.compile(r"[a-z][a-z0-9-]*")
# Owned by the recipes (each mode sets them as CPR.rst says): a set may not change them.
RECIPE_PARAMETERS = frozenset({"mode", "cpr-exec-command"})
RECIPE_CAPABILITIES = frozenset({"events", "x-ignore-shared", "pause-before-switchover"})


@dataclass
class MigrationOptions:
    """One option set: capabilities turned on and parameters set, on both QEMUs of a cell."""

    name: str = DEFAULT
    capabilities: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)  # name -> str | int | bool

    @property
    def default(self) -> bool:
        return not self.capabilities and not self.parameters

    def describe(self) -> str:
        """``mapped-ram; multifd-channels=4`` (or ``the recipe's own options``)."""
        words = [*self.capabilities, *(f"{k}={v}" for k, v in self.parameters.items())]
        return "; ".join(words) or "the recipe's own options"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capabilities": list(self.capabilities),
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_json(cls, d: object) -> Self:
        """A set from the spec; {} is the default set. SpecError names a bad key or value."""
        if not isinstance(d, dict):
            raise SpecError("migration must be a JSON object")
        unknown = sorted(set(d) - {"name", "capabilities", "parameters"})
        if unknown:
            raise SpecError(f"unknown migration key(s): {', '.join(unknown)}")
        m = cls(**d)
        problems = []
        if not isinstance(m.name, str) or not m.name:
            problems.append("name must be a non-empty string")
        caps, params = m.capabilities, m.parameters
        if not isinstance(caps, list) or any(not isinstance(c, str) or not NAME.fullmatch(c) for c in caps):
            problems.append("capabilities must be a list of QMP capability names")
        elif RECIPE_CAPABILITIES & set(caps):
            problems.append(f"capabilities {sorted(RECIPE_CAPABILITIES & set(caps))} belong to the recipes")
        if not isinstance(params, dict) or any(
            not NAME.fullmatch(k) or not isinstance(v, str | int | bool) for k, v in params.items()
        ):
            problems.append("parameters must map QMP parameter names to strings, integers or booleans")
        elif RECIPE_PARAMETERS & set(params):
            problems.append(f"parameters {sorted(RECIPE_PARAMETERS & set(params))} belong to the recipes")
        if problems:
            raise SpecError(f"migration {m.name!r}: " + "; ".join(problems))
        return m


def capability_args(names: list[str]) -> dict[str, Any]:
    """The arguments of ``migrate-set-capabilities`` turning ``names`` on."""
    return {"capabilities": [{"capability": n, "state": True} for n in names]}


def refusal(options: MigrationOptions, version: str, exc: QmpCommandError) -> Unsupported | None:
    """The ``unsupported`` verdict for QEMU refusing a command under a non-default set (None under the
    default set: the error then keeps its usual verdict)."""
    if options.default:
        return None
    return Unsupported(
        f"{version}: option set {options.name!r} ({options.describe()}) refused by the {exc.side}'s "
        f"{exc.command}: {exc.desc}"
    )


async def apply(vm: Qemu, options: MigrationOptions, version: str) -> None:
    """Turn on the set's capabilities and set its parameters on ``vm`` (QEMU refusing: Unsupported)."""
    if options.capabilities:
        await command(vm, options, version, "migrate-set-capabilities", capability_args(options.capabilities))
    if options.parameters:
        await command(vm, options, version, "migrate-set-parameters", dict(options.parameters))


async def command(vm: Qemu, options: MigrationOptions, version: str, name: str, args: dict[str, Any]) -> None:
    """A QMP command the set changes: QEMU's error is ``unsupported`` under a non-default set."""
    try:
        await vm.cmd(name, args)
    except QmpCommandError as exc:
        raise refusal(options, version, exc) or exc from None
