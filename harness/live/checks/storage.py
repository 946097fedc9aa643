"""disk-integrity: every record the Linux guest wrote to its disks, before and after the switch, reads back
intact, in the guest (its self-check, past the page cache) and in the image files (read by the harness),
and no I/O error appears in the guest's kernel log."""

from __future__ import annotations

import re

from harness.live.checks.base import Observation, passed_if, skipped
from harness.live.result import Check

IO_ERROR = re.compile(r"I/O error|blk_update_request|critical medium error|Buffer I/O", re.IGNORECASE)


def io_errors(console: list[tuple[float, str]]) -> list[str]:
    text = "".join(chunk for _, chunk in console)
    return [ln.strip() for ln in text.splitlines() if IO_ERROR.search(ln)]


def check_disk_integrity(obs: Observation) -> Check:
    g = obs.guest
    assert g is not None
    if not g.disks:
        return skipped("disk-integrity", f"machine {g.machine} has no disk")
    expected = (
        "every record the guest wrote reads back intact (guest read-back and image files); no I/O error"
    )
    problems: list[str] = []
    seen: list[str] = []
    sc = g.self_check
    boot_id = g.boot_id
    for disk in g.disks:
        said = sc.disks.get(disk.device) if sc else None
        written = int(said.get("written", "-1")) if said and said.get("written", "").isdigit() else None
        if said is None:
            problems.append(f"{disk.device}: no read-back reported by the guest")
        else:
            verified = said.get("verified", "?")
            if (
                said.get("verified") != said.get("written")
                or said.get("bad")
                or said.get("io-errors") not in ("0", None)
            ):
                problems.append(
                    f"{disk.device}: guest read back {verified} of {said.get('written')} record(s) intact"
                    + (f", bad record(s) {said['bad']}" if said.get("bad") else "")
                    + (
                        f", {said['io-errors']} write error(s)"
                        if said.get("io-errors") not in ("0", None)
                        else ""
                    )
                )
        bad = [r.problem for r in disk.records if not r.ok]
        ids = {r.boot_id for r in disk.records if r.ok}
        others = ids - {boot_id} if boot_id else (ids if len(ids) > 1 else set())
        if disk.problem:
            problems.append(f"{disk.device} ({disk.kind} image): unreadable: {disk.problem}")
        if bad:
            problems.append(
                f"{disk.device} ({disk.kind} image): {len(bad)} damaged record(s), first: {bad[0]}"
            )
        if written is not None and len(disk.records) != written:
            held = f"holds {len(disk.records)} record(s), the guest wrote {written}"
            problems.append(f"{disk.device} ({disk.kind} image): {held}")
        if others:
            problems.append(
                f"{disk.device} ({disk.kind} image): records of other boots: {', '.join(sorted(others))}"
            )
        after = len(disk.records) - disk.before_switch if disk.before_switch is not None else None
        if obs.destination is not None and after is not None and after < 1 and not problems:
            problems.append(
                f"{disk.device}: no record written after the switch ({disk.before_switch} before)"
            )
        split = f", {disk.before_switch} before the switch" if disk.before_switch is not None else ""
        seen.append(f"{disk.device} ({disk.kind}): {len(disk.records)} record(s) intact{split}")
    errors = io_errors(g.console)
    if errors:
        problems.append(f"{len(errors)} I/O error line(s) in the guest kernel log, first: {errors[0][:100]}")
    detail = "\n".join(problems + ([""] if problems else []) + errors[:20])
    return passed_if("disk-integrity", not problems, expected, "; ".join(problems) or "; ".join(seen), detail)
