"""One recipe per mode, in terms of :class:`~harness.live.context.ScenarioContext` (CPR.rst's sequences)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from harness.live.context import ScenarioContext
from harness.live.modes import boot, cpr_exec, cpr_reboot, cpr_transfer, normal
from harness.live.vocab import Mode

RECIPES: dict[Mode, Callable[[ScenarioContext], Awaitable[None]]] = {
    Mode.BOOT: boot.run,
    Mode.NORMAL: normal.run,
    Mode.CPR_REBOOT: cpr_reboot.run,
    Mode.CPR_TRANSFER: cpr_transfer.run,
    Mode.CPR_EXEC: cpr_exec.run,
}
