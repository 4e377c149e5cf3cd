"""The page's tables, as HTML: a sweep's and an active study's accuracy (mean ± standard error over seeds, each
seed's value in the cell: shown by the page's "each seed" switch and in the cell's tooltip), a run's results,
and the config and provenance of the sampled run. Every text from the data is escaped.

    html = sweep_tables(rows)    # per task and student: test (and last-model, valid) accuracy by fraction
"""
from __future__ import annotations

import json
from html import escape

import yaml

from dss.bench.report import fraction_spend, mean_se, method_label, pct, task_facts_line

SHOWN = {"test_accuracy": "test accuracy (the checkpoint chosen on valid)",
         "test_accuracy_last": "test accuracy of the last model (the reference code's figure)",
         "valid_accuracy": "best valid accuracy"}


def seeds_cell(values: list[tuple[int, float]]) -> str:
    """One cell: mean ± s.e. in % of (seed, accuracy) pairs, with each seed's value."""
    mean, se = mean_se([v for _, v in values])
    each = " · ".join(f"s{s} {100 * v:.1f}" for s, v in sorted(values))
    text = f"{100 * mean:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")
    return f'<td title="seed: {escape(each)}">{text}<span class="seeds">{escape(each)}</span></td>'


def grid_table(rows: list[dict], row_of, col_of, metric: str, col_name, extra: list[tuple[str, dict]] = ()) -> str:
    """A table of `metric` with a row per row_of(r) and a column per col_of(r) (sorted; headed col_name(c), whose
    line breaks the page keeps), seeds pooled in each cell; `extra` rows: (name, {column: text})."""
    cols = sorted({col_of(r) for r in rows if r.get(metric) is not None})
    groups: dict = {}
    for r in rows:
        if r.get(metric) is not None:
            groups.setdefault(row_of(r), {}).setdefault(col_of(r), []).append((r["seed"], r[metric]))
    head = "<tr><th></th>" + "".join(f"<th>{escape(col_name(c))}</th>" for c in cols) + "</tr>"
    body = [f"<tr><th>{escape(name)}</th>" + "".join(seeds_cell(by[c]) if c in by else "<td></td>" for c in cols)
            + "</tr>" for name, by in groups.items()]
    body += [f'<tr class="extra"><th>{escape(name)}</th>' + "".join(f"<td>{escape(cells.get(c, ''))}</td>"
                                                                    for c in cols) + "</tr>" for name, cells in extra]
    return f'<table class="results"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def sweep_tables(rows: list[dict]) -> str:
    """Per task: its chance, teacher and test size; per student: a table per accuracy the cells have."""
    seeds = sorted({r["seed"] for r in rows})
    out = [f"<p>Accuracy in %, mean ± standard error over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
           "hover a cell or switch on <i>each seed</i> for every seed's value. Columns: the fraction of the "
           "training split (its examples).</p>"]
    for task in dict.fromkeys(r["task"] for r in rows):
        trows = [r for r in rows if r["task"] == task]
        out.append(f"<h3>{escape(task)}</h3><p>{escape(task_facts_line(task, trows))}</p>")
        for model in dict.fromkeys(r["model"] for r in trows):
            out += _model_tables(model, [r for r in trows if r["model"] == model])
    return "\n".join(out)


def _model_tables(model: str, mrows: list[dict]) -> list[str]:
    """One student's tables on one task: a row per method, a column per fraction (the test table with the
    teacher's spend per fraction, where the cells trained on an extraction)."""
    params = next((r["params"] for r in mrows if r.get("params")), None)
    n_train = {r["fraction"]: r.get("train_examples") for r in mrows}
    spend = [("teacher requests, USD", {f: fraction_spend(mrows, f) for f in n_train})] if any(
        r.get("teacher_requests") is not None for r in mrows) else []
    size = f" ({params / 1e6:.2f}M parameters)" if params else ""
    out = []
    for metric, name in SHOWN.items():
        if all(r.get(metric) is None for r in mrows):
            continue
        out.append(f"<h4>{escape(name)}, student {escape(str(model))}{size}</h4>")
        out.append(grid_table(mrows, lambda r: method_label(r["method"], r["labels"]), lambda r: r["fraction"],
                              metric, lambda f: f"{100 * f:g} %\n({n_train.get(f) or '?'})",
                              spend if metric == "test_accuracy" else []))
    return out


def active_tables(rows: list[dict]) -> str:
    """Test accuracy per strategy at each round, with the examples answered and the teacher's spend by then."""
    spend = {}
    for k in sorted({r["round"] for r in rows}):
        at = [r for r in rows if r["round"] == k]
        usd = [r["cost_usd"] for r in at if r.get("cost_usd") is not None]
        spend[k] = (f"{sum(r['answered'] or 0 for r in at) / len(at):.0f} ex, "
                    f"{sum(r['requests'] or 0 for r in at) / len(at):.0f} req"
                    + (f", ${sum(usd) / len(usd):.4f}" if usd else ""))
    seeds = sorted({r["seed"] for r in rows})
    return (f"<p>Test accuracy in %, mean ± standard error over {len(seeds)} seed(s); the last row: examples "
            "answered, teacher requests and USD by that round (mean over chains).</p>" +
            grid_table(rows, lambda r: r["strategy"], lambda r: r["round"], "test_accuracy",
                       lambda k: f"round {k}", [("answered, requests, USD", spend)]))


def run_table(results: dict, facts: dict) -> str:
    """A run's measurements (results.json) with chance and the teacher's accuracy on the same test examples."""
    items = [("test accuracy (checkpoint chosen on valid)", pct(results.get("test_accuracy"))),
             ("best valid accuracy", pct(results.get("valid_accuracy"))),
             ("test accuracy, last model", pct(results.get("test_accuracy_last"))),
             ("best step / steps", f"{results.get('best_step')} / {results.get('max_steps')}"),
             ("train / valid / test examples", " / ".join(str(results.get(f"{s}_examples")) for s in
                                                          ("train", "valid", "test"))),
             ("student parameters", f"{results['parameters']:,}" if results.get("parameters") else "–"),
             ("chance", pct(facts.get("chance"))),
             (f"{facts.get('teacher') or 'teacher'}: test accuracy", pct(facts.get("teacher_accuracy"))),
             ("training time", f"{results['train_seconds']:.0f} s" if results.get("train_seconds") else "–")]
    return kv_table(items, "results")


def kv_table(items, cls: str = "kv") -> str:
    return (f'<table class="{cls}"><tbody>' + "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                                                      for k, v in items) + "</tbody></table>")


def kv_grid(items) -> str:
    """Many short key-value pairs (a whole config), three to a line."""
    return '<dl class="grid">' + "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>" for k, v in items) \
        + "</dl>"


def provenance(info: dict, spec: dict, run) -> str:
    """The sampled run's config.json (settings, git commit, versions, data fingerprint, command) and, for a
    sweep or study, its own settings and command."""
    parts = []
    if info:
        git = info.get("git") or {}
        items = [("run folder", run), ("git commit", f"{git.get('commit')}" + (" (uncommitted changes)" if
                                                                              git.get("dirty") else "")),
                 ("data fingerprint", (info.get("data") or {}).get("fingerprint")),
                 ("command", " ".join(info.get("argv") or []) or "–"), ("rerun", info.get("rerun")),
                 ("precision, processes, threads", f"{info.get('precision')}, {info.get('num_processes')}, "
                                                   f"{info.get('torch_threads')}"),
                 *((f"version: {k}", v) for k, v in (info.get("versions") or {}).items())]
        parts += ["<h3>provenance of the sampled run</h3>", kv_table(items),
                  "<h3>its config</h3>", kv_grid((k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                for k, v in (info.get("config") or {}).items())]
    if spec:
        parts.append(f"<h3>the whole sweep's or study's command and settings</h3><pre>"
                     f"{escape(yaml.safe_dump(spec, sort_keys=False))}</pre>")
    return "\n".join(parts) or "<p>Neither a run folder nor the settings (bench.yaml, active.yaml) are here.</p>"
