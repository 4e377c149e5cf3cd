"""`dss report`: the page of a run, a sweep or an active study, one HTML file that opens from disk with nothing
else: the CSS and the script are inline and small, the figures are PNGs inside it (data: URIs), and its
Content-Security-Policy lets it load nothing from anywhere.

    path = write_report("runs/demo")           # runs/demo/report.html
"""
from __future__ import annotations

import base64
import datetime
import re
import tempfile
from html import escape
from pathlib import Path

from dss.bench.costs import DEFAULT_PRICE_PER_HOUR
from dss.core.io import atomic_write
from dss.report import assets
from dss.report.folders import Source, explains, open_folder, run_files
from dss.report.sample import sample_rows, sample_table
from dss.report.serving import cost_section
from dss.report.tables import active_tables, provenance, run_table, sweep_tables

KINDS = {"run": "a `dss train` run", "sweep": "a `dss bench` sweep", "active": "a `dss active` study"}


def prose(text: str) -> str:
    """Text of the page's own sentences, escaped, with `command` spans set as code."""
    return re.sub(r"`([^`<]+)`", r"<code>\1</code>", escape(text))


def write_report(path, out=None, n: int = 50, seed: int = 0, rationales: bool = True, log=print,
                 price_per_hour: float = DEFAULT_PRICE_PER_HOUR, teacher_file=None) -> Path:
    """Write the page of the folder `path` to `out` (default <path>/report.html); returns where."""
    src = open_folder(path)
    out = Path(out) if out else src.path / "report.html"
    if src.run is not None and n > 0:
        log(f"dss report: sampling {n} test examples of {src.run}" +
            (" and generating the student's rationales" if rationales else ""))
    atomic_write(out, build_page(src, n, seed, rationales, price_per_hour, teacher_file))
    return out


SEED_SWITCH = '<label class="switch"><input type="checkbox" id="each-seed"> each seed</label>'


def build_page(src: Source, n: int, seed: int, rationales: bool,
               price_per_hour: float = DEFAULT_PRICE_PER_HOUR, teacher_file=None) -> str:
    info, results = run_files(src.run) if src.run is not None else ({}, {})
    facts = run_facts(info, results) if src.kind == "run" else {}
    if src.run is None or n == 0:
        examples = f"<p>No sample: {escape(src.why) if src.run is None else '--sample 0'}.</p>"
    else:
        rows, notes = sample_rows(src.run, n, seed, rationales)
        examples = (f"<p>From {escape(src.why)}. {' '.join(escape(x) for x in notes)}</p>" +
                    (sample_table(rows) if rows else ""))
    tables = {"run": lambda: run_table(results, facts), "sweep": lambda: sweep_tables(src.rows),
              "active": lambda: active_tables(src.rows)}[src.kind]()
    figures = "\n".join(f'<figure><img alt="{escape(cap)}" src="{uri}"><figcaption>{escape(cap)}</figcaption>'
                        f"</figure>" for cap, uri in draw_figures(src, facts))
    body = [f'<section id="about"><h2>What this is</h2>{summary(src, info)}</section>',
            # side by side where the window is wide enough for both
            f'<div class="row"><section id="curves"><h2>Curves</h2>{figures}</section>',
            f'<section id="results"><h2>Results</h2>{SEED_SWITCH if src.kind != "run" else ""}{tables}</section></div>',
            f'<section id="costs"><h2>Cost per 1M predictions</h2>'
            f"{cost_section(src.run, info, results, price_per_hour, teacher_file)}</section>",
            f'<section id="examples"><h2>Test examples</h2>{examples}</section>',
            '<details id="provenance"><summary>Config and provenance</summary>'
            f"{provenance(info, src.spec, src.run)}</details>"]
    return assets.page(f"dss report: {src.title}", header(src), "\n".join(body))


def header(src: Source) -> str:
    from dss import __version__
    from dss.student.run_folder import git_commit
    commit = (git_commit().get("commit") or "unknown")[:10]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"<h1>dss report: {escape(src.title)}</h1><p class=\"muted\">{prose(KINDS[src.kind])}, "
            f"<code>{escape(str(src.path))}</code> · written {when} by dss {__version__} (commit {commit})</p>")


def run_facts(info: dict, results: dict) -> dict:
    """A run's chance and teacher accuracy on its test examples, with its test accuracy and best step."""
    from dss.bench.report import task_facts
    cfg = info.get("config") or {}
    facts = task_facts(cfg.get("task", ""), cfg.get("data_dir"), cfg.get("task_options"),
                       results.get("test_examples"), cfg.get("rationales"))
    return {**facts, "test_accuracy": results.get("test_accuracy"), "best_step": results.get("best_step")}


def summary(src: Source, info: dict) -> str:
    """What the page is about, in two sentences: what was trained and compared, and how."""
    cfg = info.get("config") or {}
    if src.kind == "sweep":
        what = _sweep_line(src.rows)
    elif src.kind == "active" and not src.spec:
        what = "A `dss active` study (its settings, active.yaml, are not here)."
    elif src.kind == "active":
        s, extract = src.spec, src.spec.get("extract") or {}
        what = (f"A `dss active` study on task {s.get('task')}: teacher {extract.get('teacher')}; strategies "
                f"{', '.join(s.get('strategies') or [])}; seeds {', '.join(map(str, s.get('seeds') or []))}; "
                f"{s.get('seed_size')} examples at random first, then {s.get('round_size')} a round chosen by the "
                f"strategy, until {s.get('budget_requests')} teacher requests per chain; a DSS student each round.")
    else:
        from dss.student.methods import METHODS
        method = METHODS.get(cfg.get("method", ""))
        what = (f"A `dss train` run: task {cfg.get('task')}, method {cfg.get('method')} "
                f"({method.help if method else '?'}), {cfg.get('labels')} labels, student {cfg.get('model')}, "
                f"{100 * (cfg.get('train_fraction') or 0):g} % of the training split, seed {cfg.get('seed')}.")
    how = (f" Each student: protocol {cfg.get('protocol')}, {cfg.get('max_steps')} steps of {cfg.get('batch_size')} "
           f"examples, lr {cfg.get('lr')}, alpha {cfg.get('alpha')} (the label loss's weight where there is a "
           f"rationale task), evaluated by {cfg.get('eval_mode')}." if cfg else "")
    command = src.spec.get("command") or " ".join(info.get("argv") or [])
    return (f"<p>{prose(what + how)}</p>" + (f"<p>Command: <code>{escape(command)}</code></p>" if command else ""))


def _sweep_line(rows: list[dict]) -> str:
    from dss.bench.report import method_label
    def names(key):
        return ", ".join(dict.fromkeys(str(r[key]) for r in rows))
    fractions = sorted({r["fraction"] for r in rows})
    methods = ", ".join(dict.fromkeys(method_label(r["method"], r["labels"]) for r in rows))
    return (f"A `dss bench` sweep of {len(rows)} finished cells: task(s) {names('task')}; methods {methods}; "
            f"student(s) {names('model')}; {', '.join(f'{100 * f:g} %' for f in fractions)} of the training "
            f"split; seeds {names('seed')}.")


# ------------------------------------------------------------------------------------------------ figures
def draw_figures(src: Source, facts: dict) -> list[tuple[str, str]]:
    """(caption, data: URI) of each figure, drawn by dss.bench.plot into a temporary folder."""
    from dss.bench import plot
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if src.kind == "run":
            from dss.student.run_folder import read_metrics
            made = [("training loss and valid accuracy against the step",
                     plot.plot_run(read_metrics(src.run), tmp / "run.png", facts, src.title))]
        elif src.kind == "active":
            made = [("test accuracy against the teacher's spend, per strategy (mean ± s.e. over seeds)",
                     plot.plot_cost_curves(src.rows, tmp / "cost.png", src.title, _chance(src.spec.get("task"))))]
        else:
            made = _sweep_figures(src.rows, tmp)
        return [(cap, "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()) for cap, p in made]


def _sweep_figures(rows: list[dict], tmp: Path) -> list[tuple[str, Path]]:
    from dss.bench import plot
    made = [("test accuracy against the training fraction: mean ± s.e. over seeds; the teacher dashed, chance "
             "dotted", plot.plot_curves(rows, tmp / "curves.png"))]
    if any(r.get("test_accuracy_last") is not None for r in rows):
        made.append(("the same for the last model", plot.plot_curves(rows, tmp / "last.png", "test_accuracy_last")))
    size = plot.plot_model_size(rows, tmp / "size.png")
    if size:
        made.append(("test accuracy against the student's size, at the largest fraction", size))
    # the cost axis, where cells trained on an extraction: what the teacher's answers to each subset cost, for
    # the methods that learn from them
    costly = [r for r in rows if r.get("teacher_requests") is not None and
              (r["labels"] == "teacher" or explains(r["method"]))]
    for task in dict.fromkeys(r["task"] for r in costly):
        points = [{"strategy": f"{r['method']} ({r['labels']})", "round": r["fraction"], "seed": r["seed"],
                   "cost_usd": r.get("teacher_cost_usd"), "requests": r["teacher_requests"],
                   "test_accuracy": r["test_accuracy"]} for r in costly if r["task"] == task]
        chance = next(r.get("chance") for r in rows if r["task"] == task)
        made.append((f"{task}: test accuracy against the teacher's spend on the training subset",
                     plot.plot_cost_curves(points, tmp / f"cost-{len(made)}.png", task, chance)))
    return made


def _chance(task_name) -> float | None:
    from dss.tasks import get_task
    try:
        return get_task(task_name).chance()
    except (ValueError, TypeError):  # a custom task needs its files to say; the figure goes without the line
        return None
