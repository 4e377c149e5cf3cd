"""Metrics: normalization, and the safe arithmetic evaluator that must never run text as code."""
import subprocess
import sys
import time

import pytest

from dss.core import metrics
from dss.core.metrics import UnsafeExpression, safe_eval


@pytest.mark.parametrize("expr,value", [
    ("( 5.0 + 3.0 )", 8.0), ("(84 / 2)", 42.0), ("-(2) / 4", -0.5), ("(10 - (3 + 6))", 1.0),
    ("( ( 14.0 - 2.0 ) - 10.0 )", 2.0), ("3 × 4", 12.0), ("8 ÷ 2", 4.0), ("(16 - (-11))", 27.0),
])
def test_safe_eval_values(expr, value):
    assert safe_eval(expr) == pytest.approx(value)


@pytest.mark.parametrize("expr", [
    "__import__('os').system('touch /tmp/pwned')", "(1e9 ** 1e9)", "9**9**9**9", "(2 * x)", "abs(-3)",
    "1 if 1 else 2", "[1][0]", "1e300 * 1e300", "5 // 2", "5 % 2", "1 / 0", "", "(" * 500 + "1" + ")" * 500,
    "(1" + " + 1" * 200 + ")", "lambda: 1", "'1'", "True + 1", "(8 / 4) and (6 / 4)",
])
def test_safe_eval_rejects(expr):
    with pytest.raises(UnsafeExpression):
        safe_eval(expr)


@pytest.mark.parametrize("pred,gold,same", [
    ("10001", "( 10000.0 )", False), ("( 10000.0 + 1.0 )", "10001", True), ("99999", "100000", False),
    ("( 123456789.0 + 1.0 )", "123456789", False), ("( 1.0 / 3.0 )", "0.333333", False),
    ("(0.1 + 0.2)", "0.3", True), ("( 84.0 / 2.0 )", "42", True), ("1e4", "10000", True),
    ("( 7.0 / 3.0 ) * 3.0", "7", True), ("1000000.0001", "1000000", False),
])
def test_equation_match_is_exact(pred, gold, same):
    # 6 of SVAMP's 200 test and 4 of its 80 valid gold values are >= 10,000: a relative tolerance of 1e-4
    # scored 10001 right against 10000
    assert metrics.equation_match(pred, gold) is same


def test_hostile_predictions_score_wrong_promptly_and_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [f"__import__('os').system('touch {marker}')", "(1e9 ** 1e9)", "9**9**9**9",
               f"open('{marker}', 'w')"]
    start = time.perf_counter()
    for h in hostile:
        assert not metrics.equation_match(h, "( 5.0 + 3.0 )")
    assert time.perf_counter() - start < 1.0
    assert not marker.exists()
    assert metrics.equation_match("( 5.0 + 3.0 )", "( 5.0 + 3.0 )")
    assert metrics.equation_match("(3 + 5)", "( 5.0 + 3.0 )")


def test_normalize_is_light():
    assert metrics.normalize("  neutral. ") == "neutral"
    assert metrics.normalize("train   station") == "train station"
    # case is kept, as in the reference evaluation (that is how CQA's 77.2 % teacher figure is measured)
    assert metrics.normalize("Michigan") != metrics.normalize("michigan")


def test_score_cli_on_hostile_svamp_predictions(tmp_path):
    marker = tmp_path / "pwned"
    preds = tmp_path / "p.jsonl"
    lines = [f'{{"prediction": "__import__(\'os\').system(\'touch {marker}\')", "label": "( 5.0 + 3.0 )"}}',
             '{"prediction": "(1e9 ** 1e9)", "label": "( 5.0 + 3.0 )"}',
             '{"prediction": "9**9**9**9", "label": "( 5.0 + 3.0 )"}',
             '{"prediction": "( 5.0 + 3.0 )", "label": "( 5.0 + 3.0 )"}']
    preds.write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "dss", "score", "--task", "svamp", "--predictions", str(preds),
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '{"accuracy": 0.25, "n": 4}'
    assert not marker.exists()
