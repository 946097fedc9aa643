"""net-continuity: the Linux guest's TCP stream to the harness's peer, opened before the switch, survives
it: one connection from start to end, its numbered lines without gap or duplicate, lines after the switch,
a clean close (FIN) carrying every line the guest says it sent."""

from __future__ import annotations

import re

from harness.live.checks.base import Observation, passed_if, skipped
from harness.live.checks.timing import switch_window
from harness.live.result import Check

_LINE = re.compile(r"cprnet (\d+) (\w+)$")


def stream_gaps(times: list[float], stop: float | None, resume: float | None) -> tuple[float, float | None]:
    """(largest gap between consecutive lines, the gap across the switch), in ms."""
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    across = None
    if stop is not None and resume is not None:
        before = [t for t in times if t <= resume]
        after = [t for t in times if t > resume]
        if before and after:
            across = (after[0] - before[-1]) * 1000
    return (max(gaps) if gaps else 0.0), across


def check_net_continuity(obs: Observation) -> Check:
    g = obs.guest
    assert g is not None
    if "virtio-net" not in g.devices:
        return skipped("net-continuity", f"machine {g.machine} has no network")
    expected = (
        "one TCP connection opened before the switch, lines 0..n-1 without gap or duplicate, lines after "
        "the switch, closed by the guest (FIN) with every line it sent"
    )
    st = g.stream
    if st is None:
        why = f"the guest opened no TCP connection to the peer ({g.net_links} QEMU connection(s) to the peer)"
        return passed_if("net-continuity", False, expected, why)
    problems: list[str] = []
    stop, resume, _ = switch_window(obs)
    if g.streams != 1:
        problems.append(f"{g.streams} TCP connections (the stream was reopened)")
    if stop is not None and st.opened_at > stop:
        problems.append("the connection was opened after the switch")
    numbers, ids, malformed = [], set(), []
    for line in st.lines:
        m = _LINE.match(line.text)
        if m:
            numbers.append(int(m.group(1)))
            ids.add(m.group(2))
        else:
            malformed.append(line.text[:40])
    breaks = [
        f"{b} after {a}" + (" (duplicate)" if b <= a else f" (gap of {b - a - 1})")
        for a, b in zip(numbers, numbers[1:], strict=False)
        if b != a + 1
    ]
    if numbers and numbers[0] != 0:
        breaks.insert(0, f"starts at {numbers[0]}")
    if breaks:
        problems.append(f"sequence broken: {', '.join(breaks[:5])}")
    if malformed:
        problems.append(f"{len(malformed)} malformed line(s), first {malformed[0]!r}")
    if len(ids) > 1 or (g.boot_id and ids and ids != {g.boot_id}):
        problems.append(f"lines of other boots: {', '.join(sorted(ids))}")
    after = [ln for ln in st.lines if resume is not None and ln.t > resume]
    if obs.destination is not None and not after:
        problems.append("no line arrived after the destination resumed")
    sent = g.self_check.net if g.self_check else None
    if st.reset_at is not None:
        problems.append("the connection was reset (RST)")
    elif st.fin_at is None:
        problems.append("the connection was not closed by the guest")
    if sent is None:
        problems.append("the guest reported no stream figures")
    else:
        if sent.get("sent") != str(len(numbers)):
            problems.append(f"the guest sent {sent.get('sent')} line(s), the peer received {len(numbers)}")
        if sent.get("nc-exit") != "0" or sent.get("ended") != "asked":
            why = f"exit {sent.get('nc-exit')}" + (
                ", before the self-check" if sent.get("ended") == "early" else ""
            )
            problems.append(f"the guest's sender ended ({why})")
    biggest, across = stream_gaps([ln.t for ln in st.lines], stop, resume)
    links = sorted({ln.link for ln in st.lines})
    seen = (
        (
            f"{len(numbers)} line(s) on one connection ({len(after)} after the switch), "
            f"gap across the switch {across:.0f} ms"
            if across is not None
            else f"{len(numbers)} line(s) on one connection"
        )
        + f", largest gap {biggest:.0f} ms, {st.retransmits} retransmitted segment(s)"
        + f", QEMU connection(s) {links}"
    )
    return passed_if(
        "net-continuity", not problems, expected, "; ".join(problems) or seen, seen if problems else ""
    )
