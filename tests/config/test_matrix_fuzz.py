"""Fuzzing the matrix loader: generated matrices, valid and invalid, never give a traceback; every
error is one ConfigError naming the file, and the key that was broken."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import cells as mx
from harness.config.matrix import load_matrix
from harness.errors import ConfigError

VALID = yaml.safe_load((REPO / "matrices" / "default.yaml").read_text())

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False), st.text(max_size=12),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)  # fmt: skip
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.:/ 0123456789", min_size=1, max_size=12)


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _get(node: object, path: tuple) -> object:
    for part in path:
        node = node[part]  # type: ignore[index]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict, list[tuple[str, str]]]:
    """A copy of the default matrix with 1-3 mutations; returns (doc, [(kind, key) of each applied])."""
    doc = copy.deepcopy(VALID)
    applied: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent = _get(doc, path[:-1])
        kind = draw(st.sampled_from(["retype", "delete", "unknown-key", "rename"]))
        last = path[-1]
        if kind == "retype":
            parent[last] = draw(SCALARS)
        elif not isinstance(parent, dict):
            continue
        elif kind == "delete":
            del parent[last]
        elif kind == "unknown-key":
            last = draw(KEYS)
            parent[last] = draw(SCALARS)
        else:  # rename
            value = parent.pop(last)
            last = draw(KEYS)
            parent[last] = value
        applied.append((kind, str(last)))
    return doc, applied


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "matrices" / "fuzz.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    try:
        mx.scenario_cells(load_matrix(path, repo_root=REPO))
    except ConfigError as exc:
        assert exc.message.startswith("matrices/fuzz.yaml") or "fuzz.yaml" in exc.message.splitlines()[0], exc
        return


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_matrices_never_crash(tmp_path: Path, case: tuple[dict, list[tuple[str, str]]]) -> None:
    doc, applied = case
    path = tmp_path / "matrices" / "fuzz.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        mx.scenario_cells(load_matrix(path, repo_root=REPO))
    except ConfigError as exc:
        text = str(exc)
        assert "fuzz.yaml" in text.splitlines()[0]
        if len(applied) == 1 and applied[0][0] == "unknown-key":
            key = applied[0][1]
            assert key in text or "'" + key in text, text  # the broken key is named


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_crashes(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text)
