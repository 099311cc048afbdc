"""Safe arithmetic expressions over named values, for sweep constraints and derived metrics.

Why not ``eval``: a sweep file is data someone may hand you; it must not be able to run code.
An expression is parsed with :mod:`ast` and only a whitelist of node types is accepted:
numbers, strings, booleans, names (dotted names such as ``array.rows`` are one variable),
arithmetic, comparisons, ``and``/``or``/``not``, conditional expressions, tuples/lists of
literals for ``in``, and calls of a few pure math functions. Anything else (attribute access on
objects, subscripts, lambdas, comprehensions, keyword arguments) is rejected when the expression
is compiled, before any sweep point runs.
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from accelsim.errors import AccelsimError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min, "max": max, "abs": abs, "round": round,
    "log2": math.log2, "log10": math.log10, "log": math.log, "sqrt": math.sqrt, "exp": math.exp,
    "ceil": math.ceil, "floor": math.floor,
}
# A power with a huge exponent is the one way arithmetic on literals can hang the process
# (``10 ** 10 ** 10``); no design-space formula needs exponents this large.
MAX_EXPONENT = 1024
# The exponent bound alone does not stop ``((10**1000)**1000)**1000``: every intermediate integer
# is bounded too, checked *before* an operation that could exceed it. 4096 bits (~1e1233) is far
# beyond any design quantity, and a product of two such numbers is microseconds of work.
MAX_INT_BITS = 4096
# ``"ab" * 10**9`` would build a gigabyte string; repeated strings/tuples are bounded the same way.
MAX_SEQUENCE_LENGTH = 10_000
# The text and the tree are bounded too, so parsing, checking and evaluating (all recursive) can
# neither exhaust the stack nor take long: a constraint is a line, not a program.
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPRESSION_DEPTH = 100
# ``round(x, -10**9)`` on an integer computes 10**(10**9); ndigits beyond a double's range is moot.
MAX_ROUND_DIGITS = 400


def _dotted(node: ast.AST) -> str | None:
    """``array.rows`` parses as Attribute(Name(array), rows); read it back as one name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _check(node: ast.AST, text: str, names: set[str]) -> None:
    """Walk the tree, rejecting every node type outside the whitelist; collect variable names."""
    if isinstance(node, ast.Expression):
        _check(node.body, text, names)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise AccelsimError(f"literal {node.value!r} is not allowed", field=f"expression {text!r}")
    elif isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None:
            raise AccelsimError("attribute access is only allowed in dotted parameter names",
                                field=f"expression {text!r}")
        names.add(name)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, names)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for part in (node.left, *node.comparators):
            _check(part, text, names)
    elif isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _check(part, text, names)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            _check(elt, text, names)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise AccelsimError("only calls of whitelisted functions with positional arguments are allowed",
                                field=f"expression {text!r}", allowed=sorted(FUNCTIONS))
        for arg in node.args:
            _check(arg, text, names)
    else:
        raise AccelsimError(f"{type(node).__name__} is not allowed in an expression", field=f"expression {text!r}",
                            allowed="numbers, strings, names, + - * / // % **, comparisons, and/or/not, "
                                    "x if c else y, " + ", ".join(sorted(FUNCTIONS)))


@dataclass(frozen=True)
class Expression:
    """A compiled, whitelisted expression; ``names`` are the variables it reads."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    def __call__(self, values: Mapping[str, Any]) -> Any:
        return _eval(self.tree.body, values, self.text)

    def require_names(self, known: Iterable[str], where: str) -> None:
        """Fail now, naming the valid variables, if the expression reads an unknown one."""
        known = set(known)
        missing = sorted(self.names - known)
        if missing:
            raise AccelsimError(f"unknown name {missing[0]!r} in {self.text!r}", field=where, allowed=sorted(known))


def compile_expression(text: str, where: str = "expression") -> Expression:
    """Parse and whitelist-check ``text``; raises AccelsimError naming ``where`` on any problem."""
    if not isinstance(text, str) or not text.strip():
        raise AccelsimError(f"must be a non-empty expression string, got {str(text)[:80]!r}", field=where)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise AccelsimError(f"expression is {len(text):,} characters long, more than {MAX_EXPRESSION_CHARS:,}",
                            field=where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise AccelsimError(f"cannot parse {text!r}: {err.msg}", field=where) from None
    except (RecursionError, MemoryError, ValueError) as err:  # nesting the parser cannot hold; NUL bytes
        raise AccelsimError(f"cannot parse the expression: {type(err).__name__}", field=where) from None
    depth = _depth(tree)
    if depth > MAX_EXPRESSION_DEPTH:
        raise AccelsimError(f"expression nests {depth} levels deep, more than {MAX_EXPRESSION_DEPTH}", field=where)
    names: set[str] = set()
    try:
        _check(tree, text, names)
    except AccelsimError as err:
        raise AccelsimError(err.detail, field=where, allowed=err.allowed) from None
    return Expression(text, tree, frozenset(names))


def _depth(tree: ast.AST) -> int:
    """Nesting depth of the tree, iteratively (the recursive walkers run only once it is bounded)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_EXPRESSION_DEPTH:  # deeper is already too deep: no need to look further
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _guard_size(op: ast.operator, left: Any, right: Any, text: str) -> None:
    """Refuse, before computing it, an operation whose result would exceed the size bounds."""
    where = f"expression {text!r}"
    if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int) and right > 0:
        if _int_bits(left) > 1 and (_int_bits(left) - 1) * right > MAX_INT_BITS:
            raise AccelsimError(f"the power would exceed {MAX_INT_BITS} bits", field=where)
    if isinstance(op, ast.Mod) and isinstance(left, str):
        # ``'%01500000000d' % x`` is printf formatting that allocates the width: not arithmetic.
        raise AccelsimError("'%' on a string (formatting) is not allowed", field=where)
    if isinstance(op, ast.Mult):
        if isinstance(left, int) and isinstance(right, int) and _int_bits(left) + _int_bits(right) > MAX_INT_BITS + 1:
            raise AccelsimError(f"the product would exceed {MAX_INT_BITS} bits", field=where)
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, (str, tuple)) and isinstance(count, int) and len(seq) * count > MAX_SEQUENCE_LENGTH:
                raise AccelsimError(f"the repeated sequence would exceed {MAX_SEQUENCE_LENGTH} items", field=where)


def _bounded(value: Any, text: str) -> Any:
    if isinstance(value, int) and _int_bits(value) > MAX_INT_BITS:
        raise AccelsimError(f"intermediate result exceeds {MAX_INT_BITS} bits", field=f"expression {text!r}")
    return value


def _eval(node: ast.AST, values: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        try:
            return values[name]
        except KeyError:
            raise AccelsimError(f"unknown name {name!r}", field=f"expression {text!r}",
                                allowed=sorted(values)) from None
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values, text), _eval(node.right, values, text)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise AccelsimError(f"exponent {right} is larger than {MAX_EXPONENT}", field=f"expression {text!r}")
        _guard_size(node.op, left, right, text)
        try:
            return _bounded(_BINARY[type(node.op)](left, right), text)
        except OverflowError:
            raise AccelsimError("result overflows a float", field=f"expression {text!r}") from None
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values, text))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, values, text)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, values, text)
            if result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values, text)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, values, text)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, values, text) else node.orelse, values, text)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, values, text) for e in node.elts)
    if isinstance(node, ast.Call):
        args = [_eval(a, values, text) for a in node.args]
        if node.func.id == "round" and len(args) > 1:  # type: ignore[union-attr]
            digits = args[1]
            if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > MAX_ROUND_DIGITS:
                raise AccelsimError(f"round's digits must be an integer within +-{MAX_ROUND_DIGITS}, got "
                                    f"{str(digits)[:40]}", field=f"expression {text!r}")
        try:
            return _bounded(FUNCTIONS[node.func.id](*args), text)  # type: ignore[union-attr]
        except OverflowError:
            raise AccelsimError("result overflows a float", field=f"expression {text!r}") from None
    raise AssertionError(f"unchecked node {type(node).__name__}")  # _check admits nothing else
