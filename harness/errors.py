"""Errors a user can cause, and errors of the infrastructure.

Every error the CLI turns into one clear message derives from :class:`HarnessError`:
it carries *what* went wrong (naming the file, key, cell or tree) and *how to fix it*.
The CLI prints ``error: <message>`` and, when present, ``  fix: <hint>``, then exits non-zero.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix: bad input, missing tree, checksum mismatch, ..."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  fix: {self.hint}"


class ConfigError(HarnessError):
    """The matrix YAML (or a selector given on the command line) is invalid."""


class SourceError(HarnessError):
    """A tree could not be fetched or verified."""


class PatchError(HarnessError):
    """A patch series is malformed or touches paths outside the tree."""


class InfraError(HarnessError):
    """The machinery failed (Docker engine unreachable, disk full, ...): not the tree's fault."""

    exit_code = 3
