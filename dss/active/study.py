"""A `dss active` study: every (strategy, seed) chain (dss.active.loop), `jobs` at a time, then its report:
accuracy against what the teacher cost, per strategy, mean ± standard error over seeds.

    results.csv   one row per round of every chain: strategy, seed, round, answered, requests, tokens, cost_usd,
                  test_accuracy, valid_accuracy, run_dir
    results.md    test accuracy per strategy at each round (the examples answered by then), with the requests and
                  USD it took
    cost.png      test accuracy against teacher USD (and against requests), one line per strategy
"""
from __future__ import annotations

import csv
import io
from dataclasses import MISSING, fields
from typing import NamedTuple

import yaml

from dss.active.config import ActiveConfig
from dss.active.loop import chain_dir, run_chain
from dss.core.config import to_dict
from dss.core.io import atomic_write


class Chain(NamedTuple):
    strategy: str
    seed: int

    @property
    def key(self) -> str:  # how workers and logs name it
        return f"{self.strategy}/s{self.seed}"


COLUMNS = ["strategy", "seed", "round", "answered", "requests", "tokens", "cost_usd", "test_accuracy",
           "valid_accuracy", "train_examples", "run_dir"]


def run_active(cfg: ActiveConfig, argv: list[str] | None = None, log=print) -> list[dict]:
    """Run (or resume) every chain, then write the report; returns its rows."""
    from dss.tasks import get_task
    out = cfg.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    refuse_changed(cfg)
    atomic_write(out / "active.yaml", yaml.safe_dump({"command": " ".join(argv or []) or None, **to_dict(cfg)},
                                                     sort_keys=False))
    task = get_task(cfg.task, **cfg.task_options)
    pool = task.load("train", cfg.data_dir)[:cfg.pool_limit]
    chains = [Chain(s, seed) for s in cfg.strategies for seed in cfg.seeds]
    log(f"dss active: {out}: {len(chains)} chains ({', '.join(cfg.strategies)} x seeds "
        f"{', '.join(map(str, cfg.seeds))}) over a pool of {len(pool)} {cfg.task} examples, "
        f"{cfg.budget_requests} teacher requests each")

    def one(chain):
        try:
            return run_chain(cfg, chain.strategy, chain.seed, pool, task, log)
        except Exception as e:  # reported below; a failed chain never stops the others' reports
            return e
    if cfg.jobs > 1 and len(chains) > 1:
        from dss.bench.workers import run_parallel
        outcomes = dict(run_parallel(chains, one, cfg.jobs, log))
    else:
        outcomes = {c: one(c) for c in chains}
    failed = {c: o for c, o in outcomes.items() if isinstance(o, BaseException)}
    rows = [p for c in chains if c not in failed for p in outcomes[c]]
    write_report(cfg, rows)
    for (strategy, seed), err in failed.items():
        log(f"dss active: chain {strategy} s{seed} failed: {type(err).__name__}: {err}")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(chains)} chains failed (their finished rounds are kept)")
    return rows


# what a study may change between runs without changing what its chains did: more chains, a bigger budget
MAY_CHANGE = ("command", "name", "output_dir", "strategies", "seeds", "jobs", "budget_requests", "budget_usd")


def refuse_changed(cfg: ActiveConfig) -> None:
    """A study resumed with other settings would mix rounds made two ways: refuse, naming what changed."""
    path = cfg.out_dir() / "active.yaml"
    if not path.is_file():
        return
    new = to_dict(cfg)
    # a setting added after the study was made ran at its default then: compare against that default
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(ActiveConfig)}
    old = {**defaults, **(yaml.safe_load(path.read_text()) or {})}
    changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
               if k not in MAY_CHANGE and old.get(k) != new.get(k)]
    if changed:
        from dss.core.errors import ConfigError
        raise ConfigError(f"{cfg.out_dir()} was made with other settings ({'; '.join(changed)}): use another "
                          "name or output_dir (more seeds, strategies or budget may be added to a study)")


def rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})
    return buf.getvalue()


def markdown(cfg: ActiveConfig, rows: list[dict]) -> str:
    """Test accuracy per strategy at each round, mean ± s.e. over seeds, with the mean requests and USD."""
    from dss.bench.report import mean_se
    seeds = len({r["seed"] for r in rows})
    rounds = sorted({r["round"] for r in rows})
    lines = [f"# Active study {cfg.name or cfg.out_dir().name}", "",
             f"Task {cfg.task}; teacher {cfg.extract.get('teacher')}; {len(cfg.strategies)} strategies x {seeds} "
             f"seed(s); the first {cfg.seed_size} examples at random, then rounds of {cfg.round_size}"
             + (f", each {cfg.round_growth:g} times the one before" if cfg.round_growth != 1 else "") + "; budget "
             f"{cfg.budget_requests} requests per chain. Test accuracy in %, mean ± standard error over seeds; "
             "under each round, the examples answered and the teacher requests and USD spent by then (mean over "
             "chains). " + ("student-first asks the teacher first where the student answers wrong (the pool's gold "
                            "labels; use_gold)." if cfg.use_gold else "No strategy looked at the pool's gold labels."),
             "",
             "| strategy | " + " | ".join(f"round {k}" for k in rounds) + " |", "|---|" + "---|" * len(rounds)]
    for strategy in cfg.strategies:
        cells = []
        for k in rounds:
            accs = [r["test_accuracy"] for r in rows if r["strategy"] == strategy and r["round"] == k]
            if not accs:
                cells.append("")
                continue
            m, se = mean_se(accs)
            cells.append(f"{100 * m:.1f}" + (f" ± {100 * se:.1f}" if se is not None else ""))
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    spend = []
    for k in rounds:
        at = [r for r in rows if r["round"] == k]
        usd = [r["cost_usd"] for r in at if r.get("cost_usd") is not None]
        answered, requests = (sum(r[k] for r in at) / len(at) for k in ("answered", "requests"))
        spend.append(f"{answered:.0f} ex, {requests:.0f} req" + (f", ${sum(usd) / len(usd):.4f}" if usd else ""))
    lines.append("| *answered, requests, USD* | " + " | ".join(spend) + " |")
    return "\n".join(lines) + "\n"


def write_report(cfg: ActiveConfig, rows: list[dict]) -> None:
    out = cfg.out_dir()
    atomic_write(out / "results.csv", rows_csv(rows))
    atomic_write(out / "results.md", markdown(cfg, rows))
    if rows:
        from dss.bench.plot import plot_cost_curves
        plot_cost_curves(rows, out / "cost.png", title=f"{cfg.task}: test accuracy against teacher spend")


def chain_summary(cfg: ActiveConfig) -> dict:
    """{(strategy, seed): recorded rounds} without running anything (what `dss active --dry-run` prints)."""
    from dss.active.loop import read_choices
    return {(s, seed): len(read_choices(chain_dir(cfg, s, seed))) for s in cfg.strategies for seed in cfg.seeds}


def read_rows(path) -> list[dict]:
    """results.csv rows with numbers as numbers."""
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    for r in rows:
        for k in ("seed", "round", "answered", "requests", "tokens", "train_examples"):
            r[k] = int(r[k]) if r.get(k) not in (None, "") else None
        for k in ("cost_usd", "test_accuracy", "valid_accuracy"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else None
    return rows
