"""Reading spec/config files and reporting pydantic validation errors: one helper for the project.

Why one module: hardware specs, model configurations and mappings are all user-written YAML (or
JSON, which YAML parses); each must fail the same way on a missing file, a directory, malformed
syntax or an invalid field, with one line naming the file and the field, never a traceback.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from accelsim.errors import AccelsimError


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, or a ``.json`` file with the JSON parser; a missing file, a directory or
    bad syntax is one AccelsimError.

    Why JSON separately: PyYAML implements YAML 1.1, which reads JSON numbers such as ``1e-05``
    (a Hugging Face ``rms_norm_eps``) as strings.
    """
    path = Path(path)
    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if not path.is_file():
        raise AccelsimError("not a regular file (a directory?)", source=str(path))
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise AccelsimError("not a text file", source=str(path)) from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise AccelsimError(f"malformed JSON at line {err.lineno}: {err.msg}", source=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise AccelsimError(f"malformed YAML{where}: {problem}", source=str(path)) from None


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
