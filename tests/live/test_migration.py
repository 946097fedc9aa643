"""Migration option sets inside the driver: the spec's set, validated; QEMU's refusal of a set becomes
``unsupported`` with QEMU's own text (never under the default set)."""

from __future__ import annotations

import pytest

from harness.live.errors import QmpCommandError, SpecError
from harness.live.migration import MigrationOptions, capability_args, refusal
from harness.live.spec import ScenarioSpec


def test_the_empty_set_is_the_default() -> None:
    opts = MigrationOptions.from_json({})
    assert opts.default and opts.name == "default" and opts.describe() == "the recipe's own options"


def test_a_set_round_trips_and_describes_itself() -> None:
    d = {"name": "multifd", "capabilities": ["multifd"], "parameters": {"multifd-channels": 4}}
    opts = MigrationOptions.from_json(d)
    assert not opts.default and opts.to_json() == d
    assert opts.describe() == "multifd; multifd-channels=4"
    assert capability_args(opts.capabilities) == {"capabilities": [{"capability": "multifd", "state": True}]}


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ([], "must be a JSON object"),
        ({"name": "x", "flags": []}, "unknown migration key(s): flags"),
        ({"name": "x", "capabilities": ["Multi FD"]}, "capabilities must be a list of QMP capability names"),
        ({"name": "x", "capabilities": ["x-ignore-shared"]}, "['x-ignore-shared'] belong to the recipes"),
        ({"name": "x", "parameters": {"mode": "cpr-exec"}}, "parameters ['mode'] belong to the recipes"),
        ({"name": "x", "parameters": {"multifd-channels": [2]}}, "parameters must map QMP parameter names"),
        ({"name": "", "capabilities": ["multifd"]}, "name must be a non-empty string"),
    ],
)
def test_a_bad_set_names_its_key(bad: object, words: str) -> None:
    with pytest.raises(SpecError) as info:
        MigrationOptions.from_json(bad)
    assert words in str(info.value)


def test_qemus_error_under_a_set_is_unsupported_in_qemus_words() -> None:
    opts = MigrationOptions("mapped-ram", ["mapped-ram"])
    exc = QmpCommandError("source", "migrate", "GenericError", "Mapped-ram migration requires a file URI")
    verdict = refusal(opts, "11.1.0", exc)
    assert verdict is not None
    assert str(verdict) == (
        "11.1.0: option set 'mapped-ram' (mapped-ram) refused by the source's migrate: "
        "Mapped-ram migration requires a file URI"
    )
    assert refusal(MigrationOptions(), "11.1.0", exc) is None  # the default set: the error keeps its verdict


def _spec(**kw: object) -> dict:
    return {"cell_id": "x/y/normal/tcg", "scenario": "normal", "workdir": "/w", **kw}


def test_the_spec_carries_the_set_and_refuses_one_where_nothing_migrates() -> None:
    sets = {"name": "multifd", "capabilities": ["multifd"]}
    spec = ScenarioSpec.from_json(_spec(migration=sets))
    assert spec.migration_options.capabilities == ["multifd"]
    for scenario in ("boot", "refuse-exec-no-command"):
        with pytest.raises(SpecError) as info:
            ScenarioSpec.from_json(_spec(scenario=scenario, migration=sets))
        assert f"option set 'multifd' on scenario '{scenario}': nothing migrates with it" in str(info.value)
    with pytest.raises(SpecError) as info:
        ScenarioSpec.from_json(_spec(migration={"name": "m", "parameters": {"mode": "normal"}}))
    assert "belong to the recipes" in str(info.value)


def test_a_refusal_scenario_is_a_spec_scenario_with_its_mode() -> None:
    spec = ScenarioSpec.from_json(_spec(scenario="refuse-transfer-file-channel"))
    assert spec.mode == "cpr-transfer" and spec.refusal is not None
    assert spec.refusal.main_channel == "file"
    with pytest.raises(SpecError) as info:
        ScenarioSpec.from_json(_spec(scenario="refuse-nothing"))
    assert "refuse-exec-no-command" in str(info.value)
