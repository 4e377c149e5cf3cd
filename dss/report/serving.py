"""The page's "cost per 1M predictions": what answering a million inputs costs with the student (the run's own
measured test throughput, on the machine it ran on, at a stated price per hour) against asking the teacher (its
mean cost per answer in a `dss extract` output: recorded usage, or the replay teacher's stated estimate).

    cost_section(Path("runs/demo-dss"), info, results, price_per_hour=0.085, teacher_file=None)  # -> HTML
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from dss.bench.costs import PER, prediction_costs
from dss.report.tables import kv_table


def cost_section(run: Path | None, info: dict, results: dict, price_per_hour: float, teacher_file=None) -> str:
    """HTML: the student's and the teacher's USD per PER predictions, and how each figure was made."""
    eps = results.get("eval_examples_per_second")
    if run is None or not eps:
        return "<p>No run here measured its test throughput, so there is no cost per prediction to show.</p>"
    got = prediction_costs(run, eps, price_per_hour, teacher_file)
    student, teacher = got["student"], got["teacher"]
    threads, procs = info.get("torch_threads"), results.get("num_processes") or 1
    items = [(f"student, per {PER:,} predictions", f"${student['usd']:.4f}"),
             ("student throughput", f"{eps:,.1f} examples/s ({results.get('eval_mode') or 'label-only'}, "
                                    f"{procs} process(es), {threads or '?'} torch thread(s))")]
    if teacher and teacher.get("usd") is not None:
        items += [(f"teacher, per {PER:,} predictions", f"${teacher['usd']:,.2f}"),
                  ("teacher / student", f"{got['teacher_over_student']:,.0f}×")]
        how = (f"The teacher's figure is the mean cost of its {teacher['examples']:,} answers in "
               f"<code>{escape(teacher['file'])}</code> ({escape(str(teacher['model']))}, "
               f"{teacher['requests']:,} requests, "
               f"${teacher['cost_usd']:.4f}" + (", tokens estimated by the replay teacher" if teacher['estimated']
                                               else ", tokens as the teacher reported them") + ").")
    else:
        why = "its model has no price" if teacher else "no <code>dss extract</code> output prices its answers"
        how = (f"No teacher figure: {why}. Price the same answers as a model would have, then pass the file: "
               f"<code>dss extract --teacher replay:gemini-3.5-flash --replay-from task --task "
               f"{escape(str(results.get('task')))} --split test --out teacher-test.jsonl</code> and "
               f"<code>dss report PATH --teacher-file teacher-test.jsonl</code>.")
    return (kv_table(items, "costs") +
            f"<p>The student's figure is the run's own test evaluation ({escape(str(results.get('test_examples')))} "
            f"examples, tokenizing included, timed by <code>dss train</code>) on the machine it ran on, charged "
            f"${price_per_hour:g} an hour (<code>--price-per-hour</code>; the default is a 2-vCPU cloud VM's "
            f"on-demand price). {how}</p>")
