"""Load YAML into plain Python data while remembering the line of every mapping key and list item.

``load(text, filename)`` returns ``(data, lines)`` where ``lines`` maps a *path* (a tuple of mapping keys
and list indexes, ``("trees", "upstream-10.2", "sha256")``) to the 1-based line where that key (or list
item) starts. :func:`line_of` finds the nearest known line for any path, so an error about a missing key
points at its parent. Syntax errors and duplicate keys raise :class:`~harness.errors.ConfigError` naming
``file:line``. Safe loading only (``yaml.SafeLoader``): no arbitrary Python objects.

:class:`Problems` collects ``(path, message, hint)`` triples (from pydantic via :func:`pydantic_problems`
or from cross-checks) and :func:`config_error` renders them as one ConfigError, one ``file:line: key:``
line each.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError

YamlPath = tuple[str | int, ...]
Problem = tuple[YamlPath, str, str | None]  # (path, message, hint)


def load(text: str, filename: str) -> tuple[Any, dict[YamlPath, int]]:
    """Parse one YAML document; return its data and the line of each key/item (see module doc)."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # its reader already rejects non-printable characters
        root = loader.get_single_node()
        lines: dict[YamlPath, int] = {(): 1}
        data = _build(loader, root, (), lines, filename) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(
            f"{filename}{line}: YAML syntax error: {problem}",
            hint="check the indentation and quoting at that line (YAML uses spaces, not tabs)",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: YAML error: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int], fn: str
) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves "<<: *anchor" merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{fn}:{line}: {dotted(path)}: mapping keys must be plain names")
            key = str(key_node.value)
            if key in out:
                raise ConfigError(
                    f"{fn}:{line}: {dotted((*path, key))}: duplicate key "
                    f"(first at line {lines[(*path, key)]})",
                    hint="remove or rename one of the two entries",
                )
            lines[(*path, key)] = line
            out[key] = _build(loader, value_node, (*path, key), lines, fn)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, i), lines, fn))
        return items
    return loader.construct_object(node, deep=True)


def line_of(lines: dict[YamlPath, int], path: YamlPath) -> int:
    """The line of ``path``, or of its nearest ancestor present in the file."""
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    return lines.get(p, 1)


def dotted(path: YamlPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Problems(list[Problem]):
    """Problems found in one file, in the order they were found."""

    def add(self, path: YamlPath, message: str, hint: str | None = None) -> None:
        self.append((tuple(path), message, hint))

    def under(self, prefix: YamlPath) -> Callable[..., None]:
        """``add`` with paths relative to ``prefix``."""
        return lambda path, message, hint=None: self.add((*prefix, *path), message, hint)


def config_error(shown: str, lines: dict[YamlPath, int], problems: list[Problem]) -> ConfigError:
    """One ConfigError: ``file:line: dotted.key: message`` (+ hint), or one such line per problem."""
    ordered = sorted(problems, key=lambda prob: line_of(lines, prob[0]))  # stable: same line keeps order
    rendered = [(f"{shown}:{line_of(lines, p)}: {dotted(p)}: {msg}", hint) for p, msg, hint in ordered]
    if len(rendered) == 1:
        return ConfigError(rendered[0][0], hint=rendered[0][1])
    body = "\n".join(m + (f"\n    fix: {h}" if h else "") for m, h in rendered)
    return ConfigError(f"{shown}: {len(rendered)} problems\n{body}")


def pydantic_problems(exc: ValidationError, root: type[BaseModel]) -> Problems:
    """Translate pydantic's errors (validating ``root``) into problems with helpful hints."""
    out = Problems()
    for err in exc.errors():
        loc: YamlPath = tuple(err["loc"])
        kind, msg, hint = err["type"], err["msg"], None
        if kind == "extra_forbidden":
            allowed = allowed_keys(root, loc[:-1])
            msg, hint = "unknown key", f"allowed keys here: {', '.join(allowed)}" if allowed else None
        elif kind == "missing":
            msg, hint = "required key is missing", f"add '{loc[-1]}:'"
        elif kind == "string_type":
            hint = f'quote the value in YAML: {loc[-1]}: "..."' if isinstance(loc[-1], str) else "quote it"
        elif kind in ("literal_error", "enum"):
            hint = "use one of the listed values"
        out.add(loc, msg[:1].lower() + msg[1:], hint)
    return out


def allowed_keys(root: type[BaseModel], loc: YamlPath) -> list[str]:
    """Field names of the model found at ``loc`` below ``root`` (through dict, list and Optional)."""
    tp: Any = root
    i = 0
    while i <= len(loc):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        origin = typing.get_origin(tp)
        if origin in (dict, list):
            tp, i = args[-1], i + 1
        elif origin is not None and len(args) == 1:  # X | None
            tp = args[0]
        elif i == len(loc):
            break
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and loc[i] in tp.model_fields:
            tp, i = tp.model_fields[str(loc[i])].annotation, i + 1
        else:
            return []
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
