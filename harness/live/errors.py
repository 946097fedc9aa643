"""Errors inside the scenario container: each ends as a verdict in ``result.json``, never on the host.

::

    LiveError                    root of every error the in-container code raises
     ├── SpecError               the scenario spec is malformed (verdict error)
     ├── Refused                 a configuration QEMU would silently mishandle: a guard rail (error)
     ├── Unsupported             the QEMU under test lacks what the cell needs; QEMU's own text
     │                           (verdict unsupported)
     ├── EnvironmentLimit        this host cannot run what the cell needs, e.g. a nested KVM that
     │                           stops the Linux guest (verdict unsupported, QEMU's own text)
     └── ScenarioFailed          QEMU did not do what the recipe expects (verdict fail)
          ├── StepTimeout        a step did not finish in its time ("timeout in step ...")
          └── QemuError          the QEMU under test misbehaved
               ├── QmpCommandError   QEMU answered a command with an error
               └── QemuExited        the process ended while a step needed it

Anything else that escapes a recipe is a bug of the harness: the driver reports it as verdict
``error`` with ``harness error: ...`` and the last frames of its traceback.
"""

from __future__ import annotations


class LiveError(Exception):
    """Root of the in-container errors."""


class SpecError(LiveError, ValueError):
    """The scenario spec handed to the driver is malformed."""


class Refused(LiveError):
    """A configuration QEMU would silently mishandle (harness guard rail): verdict ``error``."""


class Unsupported(LiveError):
    """The QEMU under test lacks the mode or option: verdict ``unsupported`` (QEMU's own text)."""


class EnvironmentLimit(LiveError):
    """This host cannot run what the cell needs (not a QEMU failure): verdict ``unsupported``."""


class ScenarioFailed(LiveError):
    """QEMU did not do what the recipe expects: verdict ``fail``."""


class StepTimeout(ScenarioFailed):
    """A step ran past its timeout."""


class QemuError(ScenarioFailed):
    """The QEMU under test misbehaved: exited early, refused a command, failed a migration."""


class QmpCommandError(QemuError):
    def __init__(self, side: str, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{side}: {command} failed: {desc}")
        self.side, self.command, self.error_class, self.desc = side, command, error_class, desc


class QemuExited(QemuError):
    """The QEMU process ended (its exit status and the tail of its stderr are in the message)."""
