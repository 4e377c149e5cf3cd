"""`dss speed`: examples/s, tokens/s and peak memory of dss's training loop against the reference code's
(a Seq2SeqTrainer subclass with two forward passes per batch), same model, data and global batch.

    dss speed --task demo --method dss --model tiny --batch-size 32 --steps 20
    dss speed --task cqa train_fraction=0.5 --variants dss,dss-joint,dss-nogroup,baseline
    dss speed --task cqa train_fraction=0.5 --batch-size 32 --repeats 6 --threads 1   # data: $DSS_DATA_DIR
    dss speed --task cqa train_fraction=0.1 --threads 1 --repeats 4 mixed_precision=bf16 --baseline-precision bf16

dss runs at its default precision (mixed_precision=auto: bf16 where the hardware runs it natively, else fp32),
the baseline in fp32 (the reference's default) unless --baseline-precision says otherwise.
"""
from __future__ import annotations

import argparse
import tempfile


def register(subparsers) -> None:
    from dss.bench.train_speed import VARIANTS
    from dss.commands.common import add_task_args
    from dss.core.config import add_flags
    from dss.student.config import TrainConfig

    p = subparsers.add_parser("speed", help="training throughput: dss vs the reference code's trainer",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per variant (default: 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per variant, interleaved; the median is shown (default: 1)")
    p.add_argument("--variants", default="dss,baseline",
                   help=f"comma-separated, of {', '.join(VARIANTS)} (default: dss,baseline)")
    p.add_argument("--baseline-precision", default="no", choices=("no", "bf16", "same"),
                   help="the baseline's precision: no (fp32, the reference's default), bf16, or same as dss's "
                        "resolved mixed_precision (default: no)")
    p.add_argument("--config", help="YAML file of TrainConfig keys")
    add_task_args(p, required=False)
    skip = ("task", "data_dir", "task_options", "max_steps", "eval_steps", "resume", "overwrite", "tensorboard")
    p.set_defaults(config_fields=add_flags(p.add_argument_group("model and data"), TrainConfig, skip))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="TrainConfig overrides")
    p.set_defaults(func=run)


def run(args) -> int:
    from dss.bench.train_speed import speed, summarize
    from dss.commands.train import config_from_args

    with tempfile.TemporaryDirectory(prefix="dss-speed-") as tmp:
        if args.output_dir is None:
            args.output_dir = tmp  # tokenizer and token cache only
        cfg = config_from_args(args)
        runs = speed(cfg, [v.strip() for v in args.variants.split(",")], args.steps, args.warmup, args.repeats,
                     args.baseline_precision)
    table = summarize(runs)
    print(f"\n{'variant':<12} {'precision':>9} {'examples/s':>11} {'(min)':>8} {'tokens/s':>10} {'peak MB':>9} "
          f"{'x baseline':>11} {'(min)':>6}")
    for s in table:
        ratio = f"{s['x_baseline']:.2f}" if s["x_baseline"] else "-"
        low = f"{s['x_baseline_min']:.2f}" if s["x_baseline_min"] else "-"
        print(f"{s['variant']:<12} {s['precision']:>9} {s['examples_per_second']:>11.1f} "
              f"{s['examples_per_second_min']:>8.1f} {s['tokens_per_second']:>10.0f} {s['peak_memory_mb']:>9.0f} "
              f"{ratio:>11} {low:>6}")
    print(f"({cfg.task}, method {cfg.method}, model {cfg.model}, global batch {cfg.batch_size}, {args.steps} timed "
          f"steps, {args.repeats} repeat(s) in A-B-B-A order, {table[0]['threads']} torch thread(s) per run; "
          "x baseline: the ratio within each repeat, median and min)")
    return 0
