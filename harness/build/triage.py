"""Turn a failed build into a stage, a cause, an explanation and a suggested matrix change.

The rules are data: ``harness/triage_rules.yaml`` (format documented at its top). :func:`classify` takes
the failing stage, the output of the failing step (and the error message) and returns a :class:`Triage`;
the first rule (file order) with a pattern matching a line wins. Nothing matched: cause ``unclassified``
with the first error line of the output.

A rule's ``change`` (e.g. ``{"name": "disable-werror", "add_configure": ["--disable-werror"]}``) is what
``--remedy auto`` applies to the profile (see :mod:`harness.build.remedy`).

Triage runs after the builder (:func:`annotate`): the builder says where a build stopped, triage says why.
A compile failure no rule explains is then read against the tree (:mod:`harness.build.target_triage`):
when one target of a multi-target build causes it, the remedy leaves that target out.
The rules file ships with the harness: when it does not load, that is a bug of the harness
(:class:`~harness.errors.InternalError`), not something the user did.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.build import target_triage
from harness.config import images
from harness.errors import InternalError
from harness.live.vocab import Stage, Verdict
from harness.store.build_record import BuildRecord, TriageRecord

RULES_PATH = Path(__file__).resolve().parent / "triage_rules.yaml"
STAGES = tuple(Stage)
RULE_KEYS = {
    "id",
    "stages",
    "stage",
    "patterns",
    "cause",
    "explanation",
    "remedy",
    "change",
    "alternatives",
    "name_patterns",
}
CHANGE_KEYS = {"name", "add_configure", "remove_configure", "add_cflags", "fill_subprojects"}
FIRST_ERROR = re.compile(r"\b(error|ERROR|Error)\b[:!]|FAILED:|fatal|undefined reference|Killed")


@dataclass(frozen=True)
class Rule:
    id: str
    patterns: tuple[re.Pattern[str], ...]
    cause: str
    explanation: str = ""
    remedy: str = ""
    stages: tuple[str, ...] = ()
    stage: str | None = None  # stage reported instead of the build's (e.g. disk full -> infra)
    change: dict[str, Any] | None = None
    alternatives: tuple[dict[str, Any], ...] = ()
    name_patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    packages: dict[str, dict[str, str]]


Triage = TriageRecord  # what classify returns


class _Lenient(string.Formatter):
    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, int):
            return args[key] if key < len(args) and args[key] is not None else ""
        return kwargs.get(key, "")


_FMT = _Lenient()


@functools.cache
def load_rules(path: Path = RULES_PATH) -> RuleSet:
    """Read and validate the rules file; a bad rule is a ConfigError naming the file, rule and key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InternalError(f"{path}: cannot read triage rules: {exc}", hint="fix the YAML") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise InternalError(f"{path}: needs a 'rules:' list", hint="see the comment at the top of the file")
    rules = []
    for index, raw in enumerate(data["rules"]):
        where = f"{path}: rules[{index}]"
        if not isinstance(raw, dict) or not raw.get("id") or not raw.get("patterns") or not raw.get("cause"):
            raise InternalError(
                f"{where}: every rule needs id, patterns and cause", hint="add the missing keys"
            )
        where = f"{path}: rule {raw['id']}"
        unknown = sorted(set(raw) - RULE_KEYS)
        if unknown:
            raise InternalError(
                f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"allowed: {sorted(RULE_KEYS)}"
            )
        for change in [raw.get("change") or {}, *(raw.get("alternatives") or [])]:
            if set(change) - CHANGE_KEYS:
                bad = ", ".join(sorted(set(change) - CHANGE_KEYS))
                raise InternalError(
                    f"{where}: unknown change key(s) {bad}", hint=f"allowed: {sorted(CHANGE_KEYS)}"
                )
        bad_stages = [s for s in [*(raw.get("stages") or []), raw.get("stage")] if s and s not in STAGES]
        if bad_stages:
            raise InternalError(
                f"{where}: unknown stage(s) {bad_stages}", hint=f"stages: {', '.join(STAGES)}"
            )
        try:
            patterns = tuple(re.compile(p) for p in raw["patterns"])
            name_patterns = tuple(re.compile(p) for p in raw.get("name_patterns") or ())
        except re.error as exc:
            raise InternalError(f"{where}: bad pattern: {exc}", hint="patterns are Python regexes") from exc
        rules.append(
            Rule(
                id=str(raw["id"]),
                patterns=patterns,
                cause=str(raw["cause"]),
                explanation=str(raw.get("explanation", "")),
                remedy=" ".join(str(raw.get("remedy", "")).split()),
                stages=tuple(raw.get("stages") or ()),
                stage=raw.get("stage"),
                change=raw.get("change"),
                alternatives=tuple(raw.get("alternatives") or ()),
                name_patterns=name_patterns,
            )
        )
    return RuleSet(tuple(rules), {str(k): dict(v) for k, v in (data.get("packages") or {}).items()})


def package_for(name: str, distro: str, rules: RuleSet | None = None) -> str:
    """The package providing dependency ``name`` on ``distro`` (``debian`` or ``openeuler``)."""
    table = (rules or load_rules()).packages
    for key in (name, name.lower(), name.lower().removeprefix("lib"), "lib" + name.lower()):
        if key in table:
            return table[key].get(distro) or next(iter(table[key].values()))
    return f"the development package of {name}" if name else "the missing package"


def classify(
    stage: str | None,
    text: str,
    *,
    error: str = "",
    distro: str = "debian",
    image: str = "",
    series: dict[str, Any] | None = None,
    rules: RuleSet | None = None,
) -> Triage:
    """Classify one failure. ``text`` is the failing step's output, ``error`` the harness's message."""
    ruleset = rules or load_rules()
    stage = stage or "compile"
    lines = [line for line in (error.splitlines() + text.splitlines()) if line.strip()]
    context = {"image": image, **_series_context(series)}
    for rule in ruleset.rules:
        if rule.stages and stage not in rule.stages:
            continue
        for pattern in rule.patterns:  # pattern order first: precise patterns beat vague ones
            for line in lines:
                match = pattern.search(line)
                if match:
                    name = _name(rule, match, lines)
                    return _result(rule, stage, match, line.strip(), name, distro, context, ruleset)
    first = next((ln for ln in lines if FIRST_ERROR.search(ln)), lines[-1] if lines else "no output")
    return Triage(
        stage=str(stage),
        cause="unclassified",
        explanation=f"no triage rule matched; first error line: {first.strip()[:300]}",
        remedy="",
        rule="unclassified",
        evidence=first.strip()[:300],
    )


def _series_context(series: dict[str, Any] | None) -> dict[str, str]:
    failed = [s for s in (series or {}).get("statuses", []) if s.get("status") == "failed"]
    if not failed:
        return {"patch": "?", "hunks": "no rejected hunk recorded"}
    rejects = failed[0].get("rejects") or []
    hunks = ", ".join(f"hunk #{r['hunk']} of {r['file']}" for r in rejects) or "see its detail"
    return {"patch": failed[0]["name"], "hunks": f"{failed[0]['name']}: {hunks}"}


def _name(rule: Rule, match: re.Match[str], lines: list[str]) -> str:
    """The dependency a rule is about: group 1 of the match, else of the first ``name_patterns`` hit."""
    if match.groups() and match.group(1):
        return match.group(1)
    for pattern in rule.name_patterns:
        for line in lines:
            found = pattern.search(line)
            if found and found.groups() and found.group(1):
                return found.group(1)
    return ""


def _result(
    rule: Rule,
    stage: str,
    match: re.Match[str],
    line: str,
    name: str,
    distro: str,
    context: dict[str, str],
    ruleset: RuleSet,
) -> Triage:
    groups = [match.group(0), *match.groups()]
    package = package_for(name, distro, ruleset)
    values = {**context, "line": line[:300], "name": name or "?", "package": package}

    def fill(template: str) -> str:
        return _FMT.vformat(template, groups, values)

    def fill_change(change: dict[str, Any] | None) -> dict[str, Any] | None:
        if not change:
            return None
        out: dict[str, Any] = {}
        for key, value in change.items():
            out[key] = [fill(str(v)) for v in value] if isinstance(value, list) else fill(str(value))
        return out

    return Triage(
        stage=str(rule.stage or stage),
        cause=fill(rule.cause),
        explanation=fill(rule.explanation),
        remedy=fill(rule.remedy),
        rule=rule.id,
        evidence=line[:300],
        change=fill_change(rule.change),
        alternatives=[c for c in (fill_change(a) for a in rule.alternatives) if c],
    )


def annotate(record: BuildRecord, output: str, containers_dir: Path, image: str) -> TriageRecord:
    """Triage a build that did not pass: set ``record.triage``; a cause the rules call ``infra``
    (disk full, engine trouble) makes the record an ``error`` at stage ``infra``: not the tree's fault."""
    found = classify(
        record.stage,
        output,
        error=record.error or "",
        distro=images.distro(containers_dir, image),
        image=image,
        series=record.series,
    )
    if found.rule == "unclassified" and record.stage in (Stage.COMPILE, Stage.LINK) and record.source_dir:
        obj = Path(record.log).parent / "obj" if record.log else None
        by_target = target_triage.analyze(
            Path(record.source_dir), record.configure, output, record.targets, obj
        )
        if by_target is not None:
            by_target.stage = str(record.stage)
            found = by_target
    record.triage = found
    if found.stage == Stage.INFRA:
        record.stage, record.verdict = Stage.INFRA, Verdict.ERROR
    return found
