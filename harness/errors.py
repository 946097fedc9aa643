"""Errors of the host side of the harness, and what the command line makes of them.

Every error the CLI turns into one clear message derives from :class:`HarnessError`: it carries *what*
went wrong (naming the file, key, cell or tree) and, when there is one, *how to fix it*. The CLI prints
``error: <message>`` and ``  fix: <hint>``, then exits with the class's ``exit_code``. A problem of one
cell (its tree does not fetch, its patch does not apply) is not raised past the cell: it is recorded in
the cell and the run goes on.

The tree, in the manner of ``qemu.qmp``'s error documentation::

    HarnessError                 base; never raised itself
     ├── UserError               exit 2: the user can fix it in what they gave us
     │    ├── ConfigError        a matrix file, a command-line value, a selector, a run folder name
     │    ├── SourceError        a tree cannot be fetched or verified (bad digest, missing ref, ...)
     │    └── PatchError         a patch queue is malformed or reaches outside the tree
     ├── InfraError              exit 3: the machinery (no Docker engine, disk full, an image that
     │                           does not build); not the user's input and not the tree's fault
     └── InternalError           exit 70: a bug of cpr-harness itself, e.g. a broken bundled file
                                 (``harness/build/triage_rules.yaml``); please report it

``UserError`` and ``InfraError`` are siblings: catching one never catches the other.

Code that runs inside the scenario container does not use these (it may import only the standard
library and ``qemu.qmp``): its errors derive from :class:`harness.live.errors.LiveError` and end as a
verdict in the cell's ``result.json``, never as an exception on the host.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the CLI reports as one message (never raised itself)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class UserError(HarnessError):
    """A problem in what the user gave: a file, a key, a value, a name. Exit 2."""

    exit_code = 2


class ConfigError(UserError):
    """The matrix YAML, a command-line value or selector, or a named run folder is invalid."""


class SourceError(UserError):
    """A tree could not be fetched or verified."""


class PatchError(UserError):
    """A patch series is malformed or touches paths outside the tree."""


class InfraError(HarnessError):
    """The machinery failed (Docker engine unreachable, disk full, ...): not the tree's fault. Exit 3."""

    exit_code = 3


class InternalError(HarnessError):
    """A bug in cpr-harness itself (e.g. a bundled data file that does not load). Exit 70."""

    exit_code = 70
