"""Reading spec/config files and reporting pydantic validation errors: one helper for the project.

Why one module: hardware specs, model configurations and mappings are all user-written YAML (or
JSON, which YAML parses); each must fail the same way on a missing file, a directory, malformed
syntax or an invalid field, with one line naming the file and the field, never a traceback.

Bounded: a file is untrusted input, so before anything validates it the reader caps its size
(:data:`MAX_FILE_BYTES`), its nesting depth (:data:`MAX_DEPTH`) and the number of values it
expands to with every YAML alias followed (:data:`MAX_NODES`). A "billion laughs" file (anchors
of anchors, a few hundred bytes that expand to 10**9 values) is refused in time proportional to
its text, before any validator walks the expansion.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from accelsim.errors import AccelsimError

MAX_FILE_BYTES = 64 * 2**20  # far above any spec, model or sweep file; HF config.json is ~1-10 KB
MAX_DEPTH = 64  # nested mappings/lists; real files nest fewer than 10 levels
MAX_NODES = 1_000_000  # values after alias expansion; a sweep with 100k listed values stays far below


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, or a ``.json`` file with the JSON parser; a missing file, a directory or
    bad syntax is one AccelsimError.

    Why JSON separately: PyYAML implements YAML 1.1, which reads JSON numbers such as ``1e-05``
    (a Hugging Face ``rms_norm_eps``) as strings.
    """
    path = Path(path)
    if not path_exists(path):
        raise AccelsimError("file not found", source=_short(path))
    try:
        if not path.is_file():
            raise AccelsimError("not a regular file (a directory?)", source=str(path))
        if path.stat().st_size > MAX_FILE_BYTES:
            raise AccelsimError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB; not a spec file?", source=str(path))
        text = path.read_text()
    except UnicodeDecodeError:
        raise AccelsimError("not a text file", source=str(path)) from None
    except OSError as err:  # permission, a name too long, an I/O error: the user's file, not our bug
        raise AccelsimError(f"cannot read: {err.strerror or err}", source=_short(path)) from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise AccelsimError(f"malformed JSON at line {err.lineno}: {err.msg}", source=str(path)) from None
        except RecursionError:
            raise AccelsimError(f"nested more than {MAX_DEPTH} levels deep", source=str(path)) from None
        _check_plain_depth(data, str(path))
        return data
    return parse_yaml(text, str(path))


def path_exists(path: Path) -> bool:
    """``Path.exists`` that answers False for names the OS cannot even look up (too long, NUL)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:200] + "..."


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` with the size, depth and alias-expansion bounds of this module."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_node(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise AccelsimError(f"malformed YAML{where}: {problem}", source=source) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise AccelsimError(f"nested more than {MAX_DEPTH} levels deep", source=source) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_node(root: yaml.Node, source: str) -> None:
    """Depth and expanded size of a composed YAML graph, without expanding it: an alias is the
    same node object as its anchor, so sizes are memoised per node (linear in the distinct nodes),
    and a node met again on its own path is a recursive alias."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_NODES:
                raise AccelsimError(f"expands to more than {MAX_NODES:,} values (YAML aliases followed); "
                                    "refused as a possible alias bomb", source=source)
            continue
        if key in size:
            continue
        if key in on_path:
            raise AccelsimError("a YAML alias refers to a node that contains it (recursive structure)",
                                source=source)
        if depth > MAX_DEPTH:
            raise AccelsimError(f"nested more than {MAX_DEPTH} levels deep", source=source)
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in size)


def _check_plain_depth(data: Any, source: str) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise AccelsimError(f"nested more than {MAX_DEPTH} levels deep", source=source)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def validation_error(err: ValidationError, source: str, validator_fields: Iterable[str] = ()) -> AccelsimError:
    """The first problem of a pydantic ``ValidationError`` as one AccelsimError naming the field.

    Model-level validators report an empty location; ``validator_fields`` lists field names their
    messages start with, so the error still names the field (``"num_kv_heads (3) must divide ..."``).
    """
    problems = err.errors()
    first = problems[0]
    # pydantic names validator wrappers in the location ("function-after[_check(), Range]"); they
    # are not fields the user wrote.
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    msg = str(first["msg"]).removeprefix("Value error, ")
    if not loc:
        loc = next((f for f in validator_fields if msg.startswith(f)), "(top level)")
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "missing":
        msg = "required field is missing"
    elif "input" in first and not msg.startswith(loc.split(".")[-1]):
        msg = f"{msg}, got {first['input']!r}"
    if len(problems) > 1:
        msg += f" (and {len(problems) - 1} more problems)"
    return AccelsimError(msg, field=loc, source=source)
