"""Refusal scenarios: what QEMU must refuse, each provoked on purpose (docs/devel/migration/CPR.rst).

A refusal scenario boots the guest like every scenario, then does the one thing CPR.rst (or QEMU's own
code path for it) says cannot work, and expects QEMU to say no: a QMP error, or the migration status
``failed`` with a message. It passes when QEMU refused, the source keeps running (or resumes) and every
continuity check holds on the source; it fails when QEMU dies on a signal, hangs, or reports success,
and its reason says which. :data:`REFUSALS` is the catalogue (data only, also read by the host to check
a matrix's ``refusals:``); :mod:`harness.live.modes.refusal` runs one. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.live.vocab import Mode

PREFIX = "refuse-"
EXEC_COMMANDS = ("new", "none", "missing")  # cpr-exec-command: the new QEMU's argv, never set, no binary
MAIN_CHANNELS = ("unix", "file")  # cpr-transfer's main channel


@dataclass(frozen=True)
class Refusal:
    """One refusal scenario: the mode it tries and the one thing it does wrong."""

    name: str  # the scenario name in cell ids, e.g. refuse-exec-no-command
    mode: Mode
    provokes: str  # what is done wrong, in words
    documented: str  # where QEMU says it must refuse (CPR.rst's words, or QEMU's history)
    capability: str = ""  # turned on first, in normal mode (a host or QEMU lacking it shows there)
    private_ram: bool = False  # plain -m RAM: no shared memory backend, no aux-ram-share
    exec_command: str = "new"  # cpr-exec: see EXEC_COMMANDS
    main_channel: str = "unix"  # cpr-transfer: see MAIN_CHANNELS
    source_args: tuple[str, ...] = ()  # added to the source's argv (e.g. -sandbox)


def _catalogue(*refusals: Refusal) -> dict[str, Refusal]:
    for r in refusals:
        assert (
            r.name.startswith(PREFIX) and r.exec_command in EXEC_COMMANDS and r.main_channel in MAIN_CHANNELS
        )
    return {r.name: r for r in refusals}


_CAVEAT = "CPR.rst, {mode} caveats: '{mode} mode may not be used with postcopy, background-snapshot, or COLO'"
REFUSALS: dict[str, Refusal] = _catalogue(
    Refusal(
        "refuse-exec-no-command",
        Mode.CPR_EXEC,
        "cpr-exec with no cpr-exec-command set",
        "CPR.rst: 'Arguments for the new QEMU process are taken from the @cpr-exec-command parameter'; "
        "QEMU once crashed here (a segfault when cpr-exec runs without cpr-exec-command)",
        exec_command="none",
    ),
    Refusal(
        "refuse-exec-bad-command",
        Mode.CPR_EXEC,
        "cpr-exec whose cpr-exec-command names a binary that does not exist (execvp fails)",
        "migration/cpr-exec.c: when exec fails, migration fails and the VM resumes in the old QEMU; "
        "QEMU once had a use-after-free in this path",
        exec_command="missing",
    ),
    Refusal(
        "refuse-exec-sandbox",
        Mode.CPR_EXEC,
        "cpr-exec in a QEMU started with -sandbox on,spawn=deny",
        "CPR.rst, cpr-exec caveats: 'cpr-exec mode requires permission to use the exec system call, "
        "which is denied by certain sandbox options, such as spawn'",
        source_args=("-sandbox", "on,spawn=deny"),
    ),
    Refusal(
        "refuse-exec-private-ram",
        Mode.CPR_EXEC,
        "cpr-exec with guest RAM in plain -m memory (no shared memory backend, no aux-ram-share)",
        "CPR.rst, cpr-exec usage: 'Memory backend objects must have the share=on attribute. The VM must "
        "be started with the -machine aux-ram-share=on option'",
        private_ram=True,
    ),
    Refusal(
        "refuse-exec-postcopy",
        Mode.CPR_EXEC,
        "cpr-exec with the postcopy-ram capability on",
        _CAVEAT.format(mode="cpr-exec"),
        capability="postcopy-ram",
    ),
    Refusal(
        "refuse-exec-background-snapshot",
        Mode.CPR_EXEC,
        "cpr-exec with the background-snapshot capability on",
        _CAVEAT.format(mode="cpr-exec"),
        capability="background-snapshot",
    ),
    Refusal(
        "refuse-transfer-file-channel",
        Mode.CPR_TRANSFER,
        "cpr-transfer whose main channel is a file",
        "CPR.rst, cpr-transfer caveats: 'The main incoming migration channel address cannot be a file type'",
        main_channel="file",
    ),
    Refusal(
        "refuse-transfer-private-ram",
        Mode.CPR_TRANSFER,
        "cpr-transfer with guest RAM in plain -m memory (no shared memory backend, no aux-ram-share)",
        "CPR.rst, cpr-transfer usage: 'Memory backend objects must have the share=on attribute. The VM "
        "must be started with the -machine aux-ram-share=on option'",
        private_ram=True,
    ),
    Refusal(
        "refuse-transfer-postcopy",
        Mode.CPR_TRANSFER,
        "cpr-transfer with the postcopy-ram capability on",
        _CAVEAT.format(mode="cpr-transfer"),
        capability="postcopy-ram",
    ),
    Refusal(
        "refuse-transfer-background-snapshot",
        Mode.CPR_TRANSFER,
        "cpr-transfer with the background-snapshot capability on",
        _CAVEAT.format(mode="cpr-transfer"),
        capability="background-snapshot",
    ),
    Refusal(
        "refuse-reboot-postcopy",
        Mode.CPR_REBOOT,
        "cpr-reboot with the postcopy-ram capability on",
        _CAVEAT.format(mode="cpr-reboot"),
        capability="postcopy-ram",
    ),
    Refusal(
        "refuse-reboot-background-snapshot",
        Mode.CPR_REBOOT,
        "cpr-reboot with the background-snapshot capability on",
        _CAVEAT.format(mode="cpr-reboot"),
        capability="background-snapshot",
    ),
)
