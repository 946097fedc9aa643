"""The checks of a refusal scenario: QEMU refused, and the source came through it unharmed (its evidence
before the provocation against its evidence after). Each test breaks one thing."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from observations import QTREE_DST_EXTRA_HD, good

from harness.live.checks import Observation, evaluate
from harness.live.checks.base import RefusalObservation
from harness.live.errors import QmpCommandError
from harness.live.modes import refusal
from harness.live.result import Check


def refused(**source: object) -> Observation:
    """A source that refused cpr-exec with no command: it stopped, failed the migration, ran on."""
    obs = good("cpr-exec")
    before = copy.deepcopy(obs.source)
    before.counters = [12, 25]
    after: dict[str, object] = {
        "runstates": ["running", "finish-migrate", "postmigrate", "running"],
        "counters": [12, 25, 31, 40],
        "exit_code": 0,
    }
    obs.source = dataclasses.replace(obs.source, **(after | source))  # type: ignore[arg-type]
    obs.destination = None
    obs.refusal = RefusalObservation(
        "refuse-exec-no-command",
        "cpr-exec with no cpr-exec-command set",
        "CPR.rst",
        before,
        refused="cpr-exec-command is not set",
        where="MIGRATION failed",
    )
    return obs


def checks(obs: Observation) -> dict[str, Check]:
    return {c.name: c for c in evaluate(obs)}


def failed(obs: Observation) -> set[str]:
    return {n for n, c in checks(obs).items() if c.verdict == "fail"}


def test_a_clean_refusal_passes_every_check() -> None:
    got = checks(refused())
    assert list(got) == [
        "refusal",
        "runstates",
        "boot-marker",
        "counter-serial",
        "counter-qmp",
        "ram-digest",
        "device-tree",
        "device-memory",
        "process-hygiene",
        "sanitizers",
    ]
    assert {c.verdict for c in got.values()} == {"pass"}, got
    assert got["refusal"].observed == "MIGRATION failed: cpr-exec-command is not set"


def test_no_refusal_fails_the_refusal_check() -> None:
    obs = refused()
    assert obs.refusal is not None
    obs.refusal.refused = ""
    assert failed(obs) == {"refusal"}
    assert checks(obs)["refusal"].observed == "QEMU did not refuse"


def test_a_source_left_in_postmigrate_fails_runstates() -> None:
    obs = refused(runstates=["running", "finish-migrate", "postmigrate"])
    assert "runstates" in failed(obs)


def test_a_guest_that_stopped_counting_fails_counter_qmp() -> None:
    assert failed(refused(counters=[12, 25, 25, 25])) == {"counter-qmp"}
    assert "went back" in checks(refused(counters=[12, 30, 25, 40]))["counter-qmp"].observed


def test_changed_ram_and_devices_fail_against_the_source_before() -> None:
    got = checks(refused(ram_digest="00" * 32, qtree=QTREE_DST_EXTRA_HD))
    assert got["ram-digest"].verdict == "fail" and got["device-tree"].verdict == "fail"
    assert "source after the refusal" in got["ram-digest"].expected + got["ram-digest"].observed


def test_a_source_that_died_fails_hygiene() -> None:
    got = checks(refused(exit_code=-11))
    assert got["process-hygiene"].verdict == "fail" and "SIGSEGV" in got["process-hygiene"].observed


def test_a_qapi_type_error_is_the_harness_mistake_never_a_refusal() -> None:
    ours = QmpCommandError(
        "source", "migrate", "GenericError", "Parameter 'channels[0].addr.offset' expects uint64"
    )
    with pytest.raises(refusal.HarnessArgumentError, match="malformed argument"):
        refusal._refusal(ours)
    theirs = QmpCommandError(
        "source", "migrate", "GenericError", "Migration requires streamable transport (eg unix)"
    )
    assert refusal._refusal(theirs) == "Migration requires streamable transport (eg unix)"


def test_a_source_that_died_has_no_evidence_after_and_fails_for_it() -> None:
    got = failed(refused(ram_digest=None, device_memory=None, qtree=None, exit_code=-11))
    assert {"ram-digest", "device-tree", "device-memory", "process-hygiene"} <= got
