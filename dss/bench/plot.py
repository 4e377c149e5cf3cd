"""Figures of a sweep, drawn from its results.csv rows. The only module that imports matplotlib.

    curves.png      one panel per task: test accuracy against training fraction, one line per student and
                    method (mean ± standard error over seeds), the teacher's accuracy as a horizontal line,
                    chance as a dotted line
    curves-last.png the same for the last model's test accuracy (test_accuracy_last, protocol reference):
                    the reference code's figure, so the paper's 100 % T5-base figures are drawn here only
                    (where the student is T5-base)
    model_size.png  (several students) test accuracy against parameter count at the largest fraction
    cost.png        (dss active) test accuracy against the teacher's USD and requests, per strategy
    a run's curves  (dss report) training losses and valid accuracy against the step
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from dss.bench.report import METRICS, PAPER_T5_BASE, method_label, summarize  # noqa: E402

# the figure of each metric (`dss plot --metric`)
CURVES = {"test_accuracy": "curves.png", "test_accuracy_last": "curves-last.png", "valid_accuracy": "curves-valid.png"}

COLORS = {"standard": "tab:blue", "distill": "tab:orange", "dss": "tab:red", "single": "tab:green"}
STYLES = ["-", "--", ":", "-."]  # per student when a sweep has several
DASHES = {"gold": "o", "teacher": "s"}  # marker per label source
# a teacher-labelled line gets its own colour: markers alone did not tell DSS (gold) from DSS (teacher) apart
TEACHER_COLORS = {"standard": "tab:cyan", "distill": "tab:brown", "dss": "tab:purple", "single": "tab:olive"}


def line_color(method: str, labels: str):
    return (TEACHER_COLORS if labels == "teacher" else COLORS).get(method)


def is_t5_base(model: str) -> bool:
    return bool(re.search(r"t5[^/]*base", str(model), re.IGNORECASE))


def teacher_label(row: dict, accuracy: float) -> str:
    who = (row.get("teacher") or "teacher").split(" (")[0]  # "code-written rationales", "teacher"
    return f"{who} {100 * accuracy:.1f} %"


def _panels(n: int):
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def plot_curves(rows: list[dict], path: Path, metric: str = "test_accuracy") -> Path:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    summ = summarize(rows, metric)
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks):
        trows = [r for r in rows if r["task"] == task]
        fractions = sorted({float(r["fraction"]) for r in trows})
        for (t, model, method, labels), by_f in summ.items():
            if t != task:
                continue
            fs = sorted(by_f)
            ys = [100 * by_f[f][0] for f in fs]
            es = [100 * (by_f[f][1] or 0.0) for f in fs]
            name = method_label(method, labels) + (f" · {model}" if len(models) > 1 else "")
            ax.errorbar([100 * f for f in fs], ys, yerr=es, capsize=3, lw=1.6, color=line_color(method, labels),
                        ls=STYLES[models.index(model) % len(STYLES)], marker=DASHES.get(labels, "o"), ms=4,
                        label=name)
        teacher, chance = trows[0].get("teacher_accuracy"), trows[0].get("chance")
        if teacher is not None:
            ax.axhline(100 * teacher, color="black", ls="--", lw=1, label=teacher_label(trows[0], teacher))
        if chance is not None:
            ax.axhline(100 * chance, color="gray", ls=":", lw=1, label=f"chance {100 * chance:.0f} %")
        # the paper reports the reference code's figure: its points go against that metric only
        if metric == "test_accuracy_last" and any(is_t5_base(m) for m in {r["model"] for r in trows}) \
                and task in PAPER_T5_BASE:
            methods = {r["method"] for r in trows}
            for method, value in PAPER_T5_BASE[task].items():
                if method in methods:
                    ax.plot([100], [value], marker="*", ms=13, color=line_color(method, "gold"), mec="black", ls="none",
                            label=f"paper T5-base {method} {value:.1f}")
        ax.set_title(task)
        ax.set_xlabel("training data used (%)")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
        ax.set_xticks([100 * f for f in fractions])
        ax.set_xticklabels([f"{100 * f:g}" for f in fractions])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    seeds = len({r["seed"] for r in rows})
    fig.suptitle(f"{METRICS[metric]}\nvs training fraction (mean ± s.e. over {seeds} seed(s))", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_model_size(rows: list[dict], path: Path) -> Path | None:
    """Accuracy against parameter count at each task's largest fraction; None without >= 2 sized students."""
    sized = [r for r in rows if r.get("params")]
    if len({r["model"] for r in sized}) < 2:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in sized))
    fig, axes = _panels(len(tasks))
    for ax, task in zip(axes, tasks):
        trows = [r for r in sized if r["task"] == task]
        top = max(float(r["fraction"]) for r in trows)
        trows = [r for r in trows if float(r["fraction"]) == top]
        params = {r["model"]: r["params"] for r in trows}
        summ = summarize(trows, "test_accuracy")
        lines: dict = {}
        for (_, model, method, labels), by_f in summ.items():
            mean, se, _ = by_f[top]
            lines.setdefault((method, labels), []).append((params[model], 100 * mean, 100 * (se or 0.0)))
        for (method, labels), pts in lines.items():
            pts.sort()
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], capsize=3,
                        color=line_color(method, labels), marker=DASHES.get(labels, "o"),
                        label=method_label(method, labels))
        teacher = trows[0].get("teacher_accuracy")
        if teacher is not None:
            ax.axhline(100 * teacher, color="black", ls="--", lw=1, label=teacher_label(trows[0], teacher))
        ax.set_xscale("log")
        ax.set_title(f"{task} ({100 * top:g} % of train)")
        ax.set_xlabel("student parameters")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, path)


STRATEGY_COLORS = {"random": "tab:blue", "uncertainty": "tab:red", "student-first": "tab:green"}


def plot_cost_curves(rows: list[dict], path: Path, title: str = "", chance: float | None = None) -> Path:
    """`dss active`'s figure: test accuracy (mean ± s.e. over seeds, per round) against the teacher's USD, and
    against its requests, one line per strategy (chance dotted, where given)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, x, label in zip(axes, ("cost_usd", "requests"), ("teacher cost (USD)", "teacher requests")):
        for strategy in dict.fromkeys(r["strategy"] for r in rows):
            by_round: dict = {}
            for r in rows:
                if r["strategy"] == strategy and r.get(x) is not None:
                    by_round.setdefault(r["round"], []).append(r)
            pts = []
            for group in by_round.values():
                xs, ys = [r[x] for r in group], [100 * r["test_accuracy"] for r in group]
                mean = sum(ys) / len(ys)
                se = (sum((y - mean) ** 2 for y in ys) / (len(ys) - 1) / len(ys)) ** 0.5 if len(ys) > 1 else 0.0
                pts.append((sum(xs) / len(xs), mean, se))
            pts.sort()
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], capsize=3,
                            marker="o", ms=4, lw=1.6, color=STRATEGY_COLORS.get(strategy), label=strategy)
        if chance is not None:
            ax.axhline(100 * chance, color="gray", ls=":", lw=1, label=f"chance {100 * chance:.0f} %")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "test accuracy against teacher spend", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_run(records: list[dict], path: Path, facts: dict, title: str = "") -> Path:
    """One `dss train` run from its metrics.jsonl: the training losses against the step (the label and
    rationale losses too where the method has both) and valid accuracy, with the test accuracy of the chosen
    checkpoint, the teacher's test accuracy and chance (facts: test_accuracy, best_step, teacher_accuracy,
    teacher, chance; any may be None)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    two_tasks = any(r.get("rationale_loss") is not None for r in records)
    for key, style in (("loss", "-"), ("label_loss", "--"), ("rationale_loss", ":")):
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if pts and (key != "label_loss" or two_tasks):  # with one task the label loss is the loss
            loss_ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=style, lw=1.4, label=key.replace("_", " "))
    if all(r.get("loss", 1) > 0 for r in records):
        loss_ax.set_yscale("log")  # losses fall by orders of magnitude
    pts = [(r["step"], 100 * r["valid_accuracy"]) for r in records if r.get("valid_accuracy") is not None]
    acc_ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, color="tab:red", label="valid")
    if facts.get("test_accuracy") is not None and facts.get("best_step") is not None:
        acc_ax.plot([facts["best_step"]], [100 * facts["test_accuracy"]], marker="*", ms=12, ls="none",
                    color="tab:red", mec="black", label=f"test (chosen) {100 * facts['test_accuracy']:.1f} %")
    if facts.get("teacher_accuracy") is not None:
        acc_ax.axhline(100 * facts["teacher_accuracy"], color="black", ls="--", lw=1,
                       label=teacher_label(facts, facts["teacher_accuracy"]))
    if facts.get("chance") is not None:
        acc_ax.axhline(100 * facts["chance"], color="gray", ls=":", lw=1, label=f"chance {100 * facts['chance']:.0f} %")
    for ax, ylabel in ((loss_ax, "training loss"), (acc_ax, "accuracy (%)")):
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)  # a reader never sees half a PNG
    return Path(path)


def plot_sweep(rows: list[dict], out_dir, metrics: list[str] | None = None) -> list[Path]:
    """The figures of a sweep into out_dir (by default curves.png, and curves-last.png where the cells have
    the last model's test accuracy); returns the files written."""
    out_dir = Path(out_dir)
    if metrics is None:
        metrics = ["test_accuracy"] + (["test_accuracy_last"] if any(r.get("test_accuracy_last") is not None
                                                                     for r in rows) else [])
    written = [plot_curves(rows, out_dir / CURVES[m], m) for m in metrics]
    size = plot_model_size(rows, out_dir / "model_size.png")
    return written + ([size] if size else [])
