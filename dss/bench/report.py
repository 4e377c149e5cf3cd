"""The report of a sweep, from its rows (one per finished cell): results.csv, mean ± standard error over
seeds, and the results.md tables with chance, the teacher's accuracy and the paper's T5-base figures per task.

    text = rows_to_csv(rows); rows = read_csv(path)   # numbers as numbers
    md = markdown(rows, title)

Pure functions of rows (and, for `task_facts`, the task's test split); collecting rows from cell folders is
dss.bench.sweep's job, drawing them dss.bench.plot's.
"""
from __future__ import annotations

import csv
import io
import math
import sys

CSV_COLUMNS = ["task", "method", "labels", "model", "fraction", "seed", "train_examples", "test_examples",
               "valid_accuracy", "test_accuracy", "test_accuracy_last", "best_step", "params",
               "examples_per_second", "seconds", "cpu_seconds", "chance", "teacher_accuracy", "teacher",
               "teacher_requests", "teacher_tokens", "teacher_cost_usd", "run_dir"]
# what each accuracy column is (results.md, the figures' axes)
METRICS = {"test_accuracy": "test accuracy of the checkpoint chosen on valid (dss's figure)",
           "test_accuracy_last": "test accuracy of the last model, no selection (the reference code's figure, "
                                 "the one the paper reports)",
           "valid_accuracy": "best valid accuracy"}

# Table 1/2 of the paper: T5-base (220M) on 100 % of the training data, accuracy in % (paper-reference.md).
# Marked on the curves where the student is T5-base; `distill` has no figure in the reference.
PAPER_T5_BASE = {
    "esnli": {"standard": 88.38, "single": 88.88, "dss": 89.51},
    "anli1": {"standard": 43.58, "single": 43.50, "dss": 49.58},
    "cqa": {"standard": 62.19, "single": 61.37, "dss": 63.29},
    "svamp": {"standard": 62.63, "single": 63.00, "dss": 65.50},
}




def task_facts(task_name: str, data_dir=None, task_options=None, n_test: int | None = None,
               rationales: str | None = None) -> dict:
    """Chance level and the teacher's test accuracy (its parsed labels against gold; unparsed = wrong), on the
    first n_test test examples: the ones the students were scored on when evaluation was capped."""
    from dss.tasks import get_task
    task = get_task(task_name, **(task_options or {}) if task_name == "custom" else {})
    teacher = None
    if rationales:  # the students' rationales came from an extraction: the task's own teacher answers are not
        return {"chance": task.chance(), "teacher_accuracy": None, "teacher": f"rationales from {rationales}"}
    if task_name == "custom" and not (task_options or {}).get("teacher_label_column"):
        # a custom file's rationales stand in for teacher answers that equal the gold label: no teacher figure
        return {"chance": task.chance(), "teacher_accuracy": None, "teacher": "the file's rationales"}
    try:
        teacher = task.teacher_stats(task.load("test", data_dir)[:n_test])["teacher_accuracy"]
    except Exception as e:  # the table just omits the teacher; the cells will report data problems
        print(f"dss bench: note: no teacher accuracy for {task_name}: {e}", file=sys.stderr)
    return {"chance": task.chance(), "teacher_accuracy": teacher, "teacher": task.teacher}




# ------------------------------------------------------------------------------------- CSV and markdown
def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


_INT_COLS = ("seed", "train_examples", "test_examples", "best_step", "params", "teacher_requests", "teacher_tokens")
_FLOAT_COLS = ("fraction", "valid_accuracy", "test_accuracy", "test_accuracy_last", "examples_per_second",
               "seconds", "cpu_seconds", "chance", "teacher_accuracy", "teacher_cost_usd")


def read_csv(path) -> list[dict]:
    """Rows of a results.csv with numbers as numbers and empty cells as None."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in _INT_COLS + _FLOAT_COLS:
            v = r.get(k)
            r[k] = None if v in (None, "") else (int(float(v)) if k in _INT_COLS else float(v))
    return rows


def mean_se(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n)); None for one value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def summarize(rows: list[dict], metric: str = "test_accuracy") -> dict:
    """{(task, model, method, labels): {fraction: (mean, se, n)}} over seeds."""
    groups: dict = {}
    for r in rows:
        if r.get(metric) is None:
            continue
        key = (r["task"], r["model"], r["method"], r["labels"])
        groups.setdefault(key, {}).setdefault(float(r["fraction"]), []).append(float(r[metric]))
    return {k: {f: (*mean_se(v), len(v)) for f, v in sorted(fr.items())} for k, fr in groups.items()}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _fmt(mean: float, se: float | None, n: int, seeds: int) -> str:
    text = f"{100 * mean:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")
    return text + (f" (n={n})" if n != seeds else "")


def method_label(method: str, labels: str) -> str:
    return {"standard": "standard fine-tuning", "distill": "standard distillation"}.get(
        method, f"{method} ({labels} labels)")


def markdown(rows: list[dict], title: str = "") -> str:
    """results.md: per task and student, test (and valid) accuracy in %, mean ± s.e. over seeds."""
    lines = [f"# Sweep {title}".rstrip(), ""]
    if not rows:
        return "\n".join(lines + ["No finished cells yet.", ""])
    seeds = len({r["seed"] for r in rows})
    last = any(r.get("test_accuracy_last") is not None for r in rows)
    lines += [(f"Accuracy in %, mean ± standard error over {seeds} seed(s) (`n=` where fewer seeds finished). "
               "**test**: the checkpoint chosen on validation." + (
                   " **test, last model**: the last model, no selection (the reference code's figure, the one "
                   "the paper reports)." if last else "")), ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        trows = [r for r in rows if r["task"] == task]
        lines += [f"## {task}", "", task_facts_line(task, trows), ""]
        for model in dict.fromkeys(r["model"] for r in trows):
            lines += _model_tables(model, [r for r in trows if r["model"] == model], seeds)
    lines.append("Column headers: fraction of the training split (training examples).")
    wall = [r["seconds"] for r in rows if r.get("seconds") is not None]
    cpu = [r["cpu_seconds"] for r in rows if r.get("cpu_seconds") is not None]
    if wall:
        lines.append(f"Training time: {len(wall)} cells, {sum(wall) / 60:.1f} min of cell wall time, "
                     f"{sum(cpu) / 60:.1f} CPU min.")
    return "\n".join(lines) + "\n"


def task_facts_line(task: str, trows: list[dict]) -> str:
    """Chance, teacher accuracy, test size and the paper's T5-base figures of one task, as one sentence."""
    chance, teacher = trows[0].get("chance"), trows[0].get("teacher_accuracy")
    facts = [f"chance {pct(chance)}" if chance is not None else "chance: open label space (no closed set)",
             f"{trows[0].get('teacher') or 'teacher'}: test accuracy {pct(teacher)}" if teacher is not None
             else f"{trows[0].get('teacher') or 'teacher'}: no test accuracy"]
    n_test = trows[0].get("test_examples")
    if n_test:
        facts.append(f"{n_test} test examples")
    paper = PAPER_T5_BASE.get(task)
    if paper:
        facts.append("paper T5-base at 100 %: " + ", ".join(f"{m} {v:.2f}" for m, v in paper.items()))
    return "; ".join(facts) + "."


def _model_tables(model: str, mrows: list[dict], seeds: int) -> list[str]:
    """The test and valid tables of one student on one task: a row per method, a column per fraction."""
    lines: list[str] = []
    params = next((r["params"] for r in mrows if r.get("params")), None)
    n_train = {float(r["fraction"]): r["train_examples"] for r in mrows if r.get("train_examples")}
    fractions = sorted({float(r["fraction"]) for r in mrows})
    shown = {"test_accuracy": "test", "test_accuracy_last": "test, last model", "valid_accuracy": "valid"}
    for metric, name in shown.items():
        summ = summarize(mrows, metric)
        if not summ:
            continue
        head = f"**{name}**, student `{model}`" + (
            f" ({params / 1e6:.2f}M parameters)" if params else "")
        lines += [head, "", "| method | " + " | ".join(
            f"{100 * f:g} % ({n_train.get(f, '?')})" for f in fractions) + " |",
            "|---|" + "---|" * len(fractions)]
        for (_, _, method, labels), by_f in summ.items():
            cells = [_fmt(*by_f[f], seeds) if f in by_f else "" for f in fractions]
            lines.append(f"| {method_label(method, labels)} | " + " | ".join(cells) + " |")
        if metric == "test_accuracy" and any(r.get("teacher_requests") is not None for r in mrows):
            spend = [fraction_spend(mrows, f) for f in fractions]
            lines.append("| *teacher requests, USD* | " + " | ".join(spend) + " |")
        lines.append("")
    return lines




def fraction_spend(rows: list[dict], fraction: float) -> str:
    """The teacher's spend on one fraction's train subsets (mean over its cells that have it)."""
    at = [r for r in rows if float(r["fraction"]) == fraction and r.get("teacher_requests") is not None]
    if not at:
        return ""
    usd = [r["teacher_cost_usd"] for r in at if r.get("teacher_cost_usd") is not None]
    return f"{sum(r['teacher_requests'] for r in at) / len(at):.0f}" + (
        f", ${sum(usd) / len(usd):.4f}" if usd else "")
