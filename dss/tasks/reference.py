"""The reference code's reading of teacher completions and its accuracy (google-research/distilling-step-by-step,
data_utils.py and metrics.py), flaws included, for `protocol=reference`: the numbers must be comparable, so
this reproduces what that code does, not what it meant. dss's own parsers (the tasks' `parse_completion`) are
the default everywhere else; docs/protocol.md lists where the two differ and why.

Each parser returns (rationale, label) as the reference has them: where it found no answer the label is
' ' (a one-space target it trains on) and the rationale row is kept.
"""
from __future__ import annotations

import math
import re


def cqa(text: str) -> tuple[str, str]:
    body = text.split("Q:")[0].rstrip()
    parts = body.split("So the answer is")
    if len(parts) != 2:  # the reference would stop here with a ValueError; no released completion does
        return "", " "
    rationale, label = parts[0].rstrip(), parts[1]
    try:
        label = re.split(r"\(.\)", label)[1].strip()
        label = label if label[-1] != "." else label[:-1]
    except IndexError:
        label = " "
    return rationale, label


def svamp(text: str) -> tuple[str, str]:
    body = text.split("Q:")[0].rstrip()
    parts = body.split("The answer is")
    if len(parts) != 2:
        return " ", " "
    match = re.search(r"\(.*\)", parts[1])
    return parts[0].rstrip(), match.group(0) if match else " "


def esnli(text: str) -> tuple[str, str]:
    rationale = text.split("Answer:")[0].rstrip()
    parts = text.split("Answer: ")
    # cut off by PaLM's token limit mid-word, "neutral\n\nPre" stays the label (no "Premise" to split at)
    return rationale, parts[1].split("Premise")[0].rstrip() if len(parts) > 1 else " "


def anli1(text: str) -> tuple[str, str]:
    parts = text.split("Premise:")[0].rstrip().split("So the answer is")
    rationale, label = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
    return rationale.rstrip(), label.lstrip()[:-1]


PARSERS = {"cqa": cqa, "svamp": svamp, "esnli": esnli, "anli1": anli1}


# ------------------------------------------------------------------------------------------------ accuracy
def float_value(expr: str) -> float:
    """The float the reference code gets for an arithmetic expression by handing it to Python's evaluator (nan
    where that would raise: a name, a division by zero, anything but numbers, + - * / and parentheses). Parsed
    with ast, never executed (dss never runs text a model or dataset wrote)."""
    import ast
    try:
        tree = ast.parse(expr.strip(), mode="eval") if len(expr) <= 200 else None
    except (SyntaxError, ValueError):
        return math.nan
    try:
        return float(_float(tree.body)) if tree is not None else math.nan
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return math.nan


def _float(node):
    import ast
    ops = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__, ast.Div: float.__truediv__}
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # Python's own int or float, as the evaluator would have it
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _float(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        left, right = _float(node.left), _float(node.right)
        if isinstance(node.op, ast.Div):
            return left / right  # int / int is a float in Python 3 too; / 0 raises, as it does there
        if type(left) is int and type(right) is int:
            return {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__}[type(node.op)](left, right)
        return ops[type(node.op)](float(left), float(right))
    raise ValueError(type(node).__name__)


def match(prediction: str, label: str, metric: str) -> bool:
    """The reference's comparison: the texts exactly (its labels are the tokenizer's decoding of the label
    ids), or for equations their float values with == (nan is never equal)."""
    if metric == "equation":
        return float_value(prediction) == float_value(label)
    return prediction == label
