"""Metrics: exact match after light normalization, and SVAMP equation accuracy by safe arithmetic.

Text that a model or a dataset produced is never executed: equations are parsed with `ast` and only
numbers, + - * /, unary minus and parentheses are evaluated, with bounds on size and magnitude. Arithmetic is
exact (`fractions.Fraction`, literals read from their text): `10001` is not `10000`, `0.1 + 0.2` is `0.3`.
"""
from __future__ import annotations

import ast
import re
from fractions import Fraction

_WS = re.compile(r"\s+")
MAX_EXPR_CHARS = 200   # SVAMP equations are < 100 chars; longer text is not an equation
MAX_NODES = 64         # bounds work per expression
MAX_ABS = 1e12         # bounds magnitudes (no 9**9**9 style blow-ups: there is no power operator anyway)


def normalize(text: str) -> str:
    """Trim, collapse whitespace, drop surrounding quotes and a trailing period.

    Case is kept, as in the reference code's evaluation: that is how the released teacher figures
    (e.g. CQA test 77.2 %) were measured; 'Michigan' for 'michigan' counts as wrong.
    """
    t = _WS.sub(" ", str(text).strip())
    t = t.strip("\"'` ")
    return t[:-1].rstrip() if t.endswith(".") else t


class UnsafeExpression(ValueError):
    pass


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def safe_eval(expr: str) -> Fraction:
    """Exact value of an arithmetic expression, or UnsafeExpression for anything else.

    Allowed: int/float literals, binary + - * / (x and ÷ are read as * and /), unary + and -, parentheses.
    """
    if not isinstance(expr, str) or len(expr) > MAX_EXPR_CHARS:
        raise UnsafeExpression("not a short string")
    text = expr.strip().replace("×", "*").replace("÷", "/").replace("−", "-")
    if not text:
        raise UnsafeExpression("empty")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise UnsafeExpression(f"does not parse: {e}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise UnsafeExpression("too large")
    return _value(tree.body, text)


def _literal(node: ast.Constant, text: str) -> Fraction:
    """A number literal's exact value: from its source text ('0.1' is 1/10, not the float nearest it)."""
    if type(node.value) is int:
        return Fraction(node.value)
    source = ast.get_source_segment(text, node) or ""
    try:
        return Fraction(source.replace("_", ""))
    except (ValueError, ZeroDivisionError):
        raise UnsafeExpression(f"number {source!r} is not a decimal literal") from None


def _value(node: ast.AST, text: str) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        v = _literal(node, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, text)
        v = -v if isinstance(node.op, ast.USub) else v
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _value(node.left, text), _value(node.right, text)
        if isinstance(node.op, ast.Div) and b == 0:
            raise UnsafeExpression("division by zero")
        v = _BINOPS[type(node.op)](a, b)
    else:
        raise UnsafeExpression(f"{type(node).__name__} is not allowed")
    if abs(v) > MAX_ABS:
        raise UnsafeExpression("value out of range")
    return v


def equation_match(prediction: str, label: str) -> bool:
    """SVAMP equation accuracy: both sides evaluate (safely, exactly) to the same number; anything else is
    wrong. The reference code compared Python floats with ==; exact arithmetic differs from it only where float
    rounding made equal values unequal (0.1 + 0.2 vs 0.3)."""
    try:
        return safe_eval(prediction) == safe_eval(label)
    except UnsafeExpression:
        return False
