"""One recipe per mode, in terms of :class:`~harness.live.context.ScenarioContext` (CPR.rst's sequences);
a refusal scenario (:mod:`harness.live.refusals`) runs :mod:`harness.live.modes.refusal` instead."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from harness.live.context import ScenarioContext
from harness.live.modes import boot, cpr_exec, cpr_reboot, cpr_transfer, normal, refusal
from harness.live.spec import ScenarioSpec
from harness.live.vocab import Mode

Recipe = Callable[[ScenarioContext], Awaitable[None]]
RECIPES: dict[Mode, Recipe] = {
    Mode.BOOT: boot.run,
    Mode.NORMAL: normal.run,
    Mode.CPR_REBOOT: cpr_reboot.run,
    Mode.CPR_TRANSFER: cpr_transfer.run,
    Mode.CPR_EXEC: cpr_exec.run,
}


def recipe_of(spec: ScenarioSpec) -> Recipe:
    """The recipe a spec runs: its refusal scenario's, or its mode's."""
    refused = spec.refusal
    return functools.partial(refusal.run, refusal=refused) if refused else RECIPES[spec.mode]
