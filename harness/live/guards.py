"""Guard rails: configurations QEMU accepts but silently mishandles are refused (verdict ``error``).

They are a harness/config error, not a QEMU failure. Tests switch them off (``FaultSpec.guard_rails``)
to show what QEMU does without them.
"""

from __future__ import annotations

from harness.live.argv import find_stray_arguments
from harness.live.spec import FaultSpec, ScenarioSpec
from harness.live.vocab import Mode

SHARED_RAM_MODES = (Mode.CPR_TRANSFER, Mode.CPR_EXEC)


def spec_problems(spec: ScenarioSpec, faults: FaultSpec) -> list[str]:
    if not faults.guard_rails:
        return []
    problems = []
    if spec.mode in SHARED_RAM_MODES and not faults.shared_ram:
        problems.append(
            f"{spec.scenario} needs guest RAM in a shared memory backend (memory-backend-memfd share=on + "
            "-machine aux-ram-share=on); with plain -m RAM QEMU may report success while the guest "
            "continues with zeroed RAM (shared_ram is false)"
        )
    if spec.mode is Mode.CPR_TRANSFER and faults.cpr_transfer_uri_only:
        problems.append(
            "cpr-transfer needs `migrate` with channels (main + cpr); with a plain uri QEMU 11.1 aborts "
            "the source (cpr_transfer_uri_only is true)"
        )
    return problems


def argv_problems(side: str, argv: list[str]) -> list[str]:
    """Empty or positional arguments in a QEMU argv (a positional becomes -hda: an extra ide-hd)."""
    return [f"{side} argv: {p}" for p in find_stray_arguments(argv)]
