"""Guard rails: configurations QEMU accepts but silently mishandles are refused (verdict ``error``).

They are a harness/config error, not a QEMU failure. Tests switch them off (``guard_rails: false``) to
show what QEMU does without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.vm import find_stray_arguments

if TYPE_CHECKING:
    from harness.scenarios import ScenarioSpec

SHARED_RAM_MODES = ("cpr-transfer", "cpr-exec")


def spec_problems(spec: ScenarioSpec) -> list[str]:
    if not spec.guard_rails:
        return []
    problems = []
    if spec.scenario in SHARED_RAM_MODES and not spec.shared_ram:
        problems.append(
            f"{spec.scenario} needs guest RAM in a shared memory backend (memory-backend-memfd share=on + "
            "-machine aux-ram-share=on); with plain -m RAM QEMU may report success while the guest "
            "continues with zeroed RAM (shared_ram is false)"
        )
    if spec.scenario == "cpr-transfer" and spec.cpr_transfer_uri_only:
        problems.append(
            "cpr-transfer needs `migrate` with channels (main + cpr); with a plain uri QEMU 11.1 aborts "
            "the source (cpr_transfer_uri_only is true)"
        )
    return problems


def argv_problems(side: str, argv: list[str]) -> list[str]:
    """Empty or positional arguments in a QEMU argv (a positional becomes -hda: an extra ide-hd)."""
    return [f"{side} argv: {p}" for p in find_stray_arguments(argv)]
