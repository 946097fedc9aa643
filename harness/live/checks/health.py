"""The Linux guest's own view: ``guest-health`` (its kernel log after the switch holds no oops, BUG, WARN,
hung task, RCU stall, clocksource trouble or TTM/DRM error) and ``guest-self-check`` (it read back
everything it wrote and its devices answered: the verdict line it printed)."""

from __future__ import annotations

import re

from harness.live.checks.base import Observation, passed_if
from harness.live.checks.timing import switch_window
from harness.live.result import Check

# What a healthy kernel never prints; each pattern with the name shown in the check.
TROUBLE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oops", re.compile(r"\bOops\b|general protection fault|Kernel panic")),
    ("BUG", re.compile(r"\bBUG: |kernel BUG at|soft lockup|hard LOCKUP")),
    ("WARN", re.compile(r"WARNING: CPU: \d+ PID: \d+|------------\[ cut here \]------------")),
    ("hung task", re.compile(r"INFO: task .+ blocked for more than|hung_task")),
    ("RCU stall", re.compile(r"rcu: INFO: .*stall|rcu_\w+ (self-)?detected stall")),
    # A clock declared unstable; not "Long readout interval, skipping watchdog check" (the watchdog ran late,
    # as after any pause of the VM, and its clocks agreed).
    ("clocksource", re.compile(r"as unstable|timekeeping watchdog|skew is too large|Marking TSC unstable")),
    ("TTM/DRM", re.compile(r"\[TTM\]|\[drm[^\]]*\] \*ERROR\*|drm.*(error|failed)", re.IGNORECASE)),
)


# The kernel's own diagnosis that the whole VM did not run (its timers did not fire), with how long.
VM_DID_NOT_RUN = re.compile(r"timer wakeup didn't happen for (\d+) jiffies")


def trouble(text: str) -> list[str]:
    """``kind: line`` for every line of ``text`` a healthy kernel would not print."""
    found = []
    for line in text.splitlines():
        for kind, pattern in TROUBLE:
            if pattern.search(line):
                found.append(f"{kind}: {line.strip()[:160]}")
                break
    return found


def check_guest_health(obs: Observation) -> Check:
    g = obs.guest
    assert g is not None
    stop, _, _ = switch_window(obs)
    expected = "no oops, BUG, WARN, hung task, RCU stall, clocksource or TTM/DRM error in the kernel log" + (
        " after the switch" if obs.destination is not None else ""
    )
    if not g.console:
        return passed_if("guest-health", False, expected, "no kernel console output was received")
    before = "".join(text for t, text in g.console if stop is not None and t < stop)
    after = "".join(text for t, text in g.console if stop is None or t >= stop)
    bad, earlier = trouble(after), trouble(before)
    lines = len(after.splitlines())
    where = "after the switch" if obs.destination is not None else "since boot"
    detail = "\n".join([*(f"{where}: {x}" for x in bad), *(f"before the switch: {x}" for x in earlier)])
    observed = (
        f"{len(bad)} problem line(s) {where}, first: {bad[0]}"
        if bad
        else f"{lines} kernel log line(s) {where}, none of concern"
    )
    if earlier and not bad:
        observed += f" ({len(earlier)} before the switch, see detail)"
    frozen = VM_DID_NOT_RUN.search(after)
    if bad and frozen:
        observed += (
            f" (the guest's timer did not fire for {frozen.group(1)} jiffies: the VM did not run while its "
            "clock did: a stalled host, or vCPUs not scheduled)"
        )
    return passed_if("guest-health", not bad, expected, observed, detail)


def check_guest_self_check(obs: Observation) -> Check:
    g = obs.guest
    assert g is not None
    expected = "the guest's own read-back after the switch: CPRSELF VERDICT PASS" + (
        ", and its virtio-serial mirror of the counter continuous" if g.vport is not None else ""
    )
    sc = g.self_check
    if sc is None:
        return passed_if(
            "guest-self-check", False, expected, g.self_check_problem or "the guest gave no verdict"
        )
    problems = [] if sc.verdict == "PASS" else [f"the guest says {sc.verdict or '(no verdict)'}"]
    if g.vport is not None:
        steps = [(a, b) for a, b in zip(g.vport, g.vport[1:], strict=False) if b != a + 1]
        if len(g.vport) < 2:
            problems.append(f"{len(g.vport)} line(s) on the virtio-serial port")
        elif steps:
            problems.append(f"virtio-serial counter broken: {steps[0][1]} after {steps[0][0]}")
    lines = [sc.line] + [
        f"DISK {d} " + " ".join(f"{k}={v}" for k, v in p.items()) for d, p in sc.disks.items()
    ]
    for kind, part in (("NET", sc.net), ("RNG", sc.rng), ("VPORT", sc.vport)):
        if part is not None:
            lines.append(f"{kind} " + " ".join(f"{k}={v}" for k, v in part.items()))
    return passed_if(
        "guest-self-check", not problems, expected, "; ".join(problems) or sc.line, "\n".join(lines)
    )
