"""Both evaluation modes on one trained checkpoint: accuracy and examples/s of closed-set scoring, dss's
label-only greedy decoding, and the reference code's evaluation, on the same rows.

The reference (google-research/distilling-step-by-step, a Seq2SeqTrainer with predict_with_generate) decodes
up to 64 new tokens for batches in dataset order and also runs a loss pass on the label targets; it is
reproduced here as `reference`: transformers' own modules, fp32 (its default; `--reference-precision bf16` is
its --bf16 flag), batches of 64 (its eval batch is its train batch, 64 in its commands). dss's modes run as
`dss train` evaluates: fast kernels and precision as the run's config says (mixed_precision=auto: bf16 where
the CPU has native bf16), the run's eval batch size. `generate-64` is dss's decoding with the 64-token cap.
`encoder` is the encoder pass alone over dss's batches (tokenizing included, no answer): the floor under any
label-only evaluation of these rows, printed as its share of `generate`'s time.
`ct2-score`, `ct2-generate` (and `ct2-int8-...`): the same scoring and decoding from the student's CTranslate2
export (`dss export`, made beside model/ when missing; float32, and int8 weights), --threads threads, the same
batch size, tokenizing included (dss.student.runtimes); present when ctranslate2 is installed.
Cost per 1M predictions: each mode's measured examples/s on a machine at --price-per-hour, against the
teacher's cost per example in --rationale-file (default: the extraction the run trained on, if any);
dss.bench.costs.prediction_costs.

    .venv/bin/python benchmarks/eval_modes.py runs/bench-esnli/esnli/tiny/dss-gold/f1-s0 [--split test]
        [--repeats 3] [--threads 1] [--batch-size N] [--reference-precision no|bf16] [--limit N] [--device cuda]
        [--price-per-hour 0.085] [--rationale-file teacher.jsonl]

The run folder's config.json says how the student was trained (task, prefixes, input format, caps); its
model/ is the checkpoint. The modes are timed in rotation (A B C D, then B C D A, ...) so that a change of load on
a shared machine falls on all of them; min and median over repeats are printed, and the ratios of medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

TORCH_MODES = ("score", "generate", "generate-64", "reference", "encoder")
CT2_MODES = ("ct2-score", "ct2-generate", "ct2-int8-score", "ct2-int8-generate")


def has_ct2() -> bool:
    import importlib.util
    return importlib.util.find_spec("ctranslate2") is not None


MODES = TORCH_MODES + (CT2_MODES if has_ct2() else ())
ANSWERING = tuple(m for m in MODES if m not in ("reference", "encoder"))  # the modes that answer, for ratios


def reference_eval(model, tokenizer, sources, labels, batch_size: int, max_input_length: int, task) -> float:
    """The reference's evaluation: batches in dataset order, generate up to 64 tokens, and a loss pass."""
    import torch
    preds = []
    with torch.no_grad():
        for k in range(0, len(sources), batch_size):
            enc = tokenizer(sources[k:k + batch_size], padding=True, truncation=True, max_length=max_input_length,
                            return_tensors="pt").to(model.device)
            tgt = tokenizer(text_target=labels[k:k + batch_size], padding=True, return_tensors="pt")["input_ids"]
            tgt = tgt.to(model.device)
            model(**enc, labels=tgt.masked_fill(tgt == tokenizer.pad_token_id, -100))  # eval loss, as the Trainer
            out = model.generate(**enc, max_new_tokens=64, do_sample=False, num_beams=1)
            preds += [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
    return task.accuracy(preds, labels)


def encoder_pass(model, tokenizer, sources, batch_size: int, max_input_length: int, accelerator) -> None:
    """The encoder alone over the batches dss.student.evaluate builds (sorted by length), in its precision."""
    import torch
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            enc = tokenizer([sources[i] for i in order[k:k + batch_size]], padding=True, truncation=True,
                            max_length=max_input_length, return_tensors="pt").to(accelerator.device)
            with accelerator.autocast():
                model.get_encoder()(**enc)


# what dss's evaluation modes change in the run's config
MODE_SETTINGS = {"score": {"eval_mode": "score"}, "generate": {"eval_mode": "generate"},
                 "generate-64": {"eval_mode": "generate", "eval_max_new_tokens": 64}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished run folder (config.json, model/)")
    p.add_argument("--split", default="test", choices=("valid", "test"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=None, help="dss's eval batch (default: the run's)")
    p.add_argument("--reference-batch-size", type=int, default=64)
    p.add_argument("--reference-precision", default="no", choices=("no", "bf16"))
    p.add_argument("--limit", type=int, default=None, help="only the split's first N rows")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where both evaluations run")
    p.add_argument("--price-per-hour", type=float, default=None, help="USD an hour of the machine answering, "
                   "for the cost per 1M predictions (default: dss.bench.costs.DEFAULT_PRICE_PER_HOUR, a 2-vCPU VM)")
    p.add_argument("--rationale-file", default=None, help="a `dss extract` output pricing the teacher's answers "
                   "(default: the extraction the run trained on)")
    return p.parse_args(argv)


def ct2_runs(args, base, batch: int, task, cfgs: dict) -> dict:
    """mode -> run(rows) -> accuracy for the CTranslate2 modes: both exports made (when missing or stale) and
    loaded once, --threads threads, on the CPU or --device's GPU."""
    from dss.student import export, runtimes
    runs = {}
    for quant, tag in (("float32", "ct2"), ("int8", "ct2-int8")):
        model_dir = Path(args.run) / "model"
        folder = export.export_folder(model_dir, quant)
        if not export.fresh(folder, model_dir):
            export.export(model_dir, quant)
        student = runtimes.Ct2Student(folder, args.threads, batch, device=args.device)
        for mode in ("score", "generate"):
            runs[f"{tag}-{mode}"] = (lambda rows, s=student, c=cfgs[mode]: runtimes.evaluate(s, task, rows, c)[0])
    return runs


def run_config(run):
    """The TrainConfig a finished run was trained with (its config.json); exits when there is none."""
    from dss.student.run_folder import trained_config
    cfg = trained_config(Path(run))
    if cfg is None:
        sys.exit(f"{run}: no config.json (not a finished run folder)")
    return cfg


def setup(args):
    """(rows, run(mode, rows) -> accuracy, the run's config, dss's eval batch): both models loaded once."""
    import dataclasses

    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from dss.student import fast
    from dss.student.data import load_data
    from dss.student.evaluate import evaluate
    from dss.student.methods import METHODS
    from dss.student.prepare import precision

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("eval_modes: --device cuda, but there is no CUDA GPU here")
    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()
    base = run_config(args.run)
    data = load_data(base)
    rows = (data.valid if args.split == "valid" else data.test)[:args.limit]
    plain = AutoModelForSeq2SeqLM.from_pretrained(Path(args.run) / "model").to(args.device)
    tokenizer = AutoTokenizer.from_pretrained(Path(args.run) / "model")
    ours = AutoModelForSeq2SeqLM.from_pretrained(Path(args.run) / "model").to(args.device)
    if base.fast_kernels:  # the kernels alone: adapt() would also add LoRA adapters to a trained model
        fast.fuse(ours, args.device)
    accelerator = Accelerator(cpu=args.device == "cpu", mixed_precision=precision(base))
    batch = args.batch_size or base.eval_batch_size
    cfgs = {mode: dataclasses.replace(base, eval_batch_size=batch, **over) for mode, over in MODE_SETTINGS.items()}
    method = METHODS[base.method]
    more = ct2_runs(args, base, batch, data.task, cfgs) if has_ct2() else {}

    def run(mode: str, rows: list) -> float | None:
        srcs = [method.eval_source(e.input, base.label_prefix) for e in rows]
        if mode in more:
            return more[mode](rows)
        if mode == "encoder":
            encoder_pass(ours.eval(), tokenizer, srcs, batch, base.max_input_length, accelerator)
            return None
        if mode == "reference":
            with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.reference_precision == "bf16"):
                return reference_eval(plain, tokenizer, srcs, [e.label for e in rows], args.reference_batch_size,
                                      base.max_input_length, data.task)
        return evaluate(ours, tokenizer, data.task, rows, cfgs[mode], accelerator)[0]
    return rows, run, base, batch


def timed(run, rows: list, repeats: int, batch: int, device: str) -> tuple[dict, dict]:
    """(accuracy, [seconds per repeat]) per mode: an untimed warm-up of every mode, then the modes in rotation."""
    import torch
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)  # GPU work is asynchronous
    for mode in MODES:  # warm-up, untimed: first calls pay for allocator growth and (on a GPU) kernel loading
        run(mode, rows[:batch])
    acc, times = {}, {m: [] for m in MODES}
    for r in range(repeats):
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            t0 = time.perf_counter()
            acc[mode] = run(mode, rows)
            sync()
            times[mode].append(time.perf_counter() - t0)
    return acc, times


def report(args, base, batch: int, n: int, acc: dict, times: dict) -> dict:
    """Print the table and the ratios; the result as a dict (--json)."""
    from dss.student.prepare import precision
    out = {"run": str(args.run), "split": args.split, "rows": n, "device": args.device, "threads": args.threads,
           "repeats": args.repeats,
           "settings": {"dss": {"precision": precision(base), "fast_kernels": base.fast_kernels, "batch_size": batch},
                        "reference": {"precision": args.reference_precision, "batch_size": args.reference_batch_size}}}
    print(f"{args.run}: {args.split}, {n} rows, {args.device}, {args.threads} thread(s), {args.repeats} repeats in "
          f"rotation; dss: precision {precision(base)}, fast_kernels {base.fast_kernels}, batch {batch}; reference: "
          f"precision {args.reference_precision}, batch {args.reference_batch_size}")
    med = {m: statistics.median(times[m]) for m in MODES}
    for mode in MODES:
        eps = [n / t for t in times[mode]]
        out[mode] = {"accuracy": acc[mode], "examples_per_second_min": min(eps),
                     "examples_per_second_median": statistics.median(eps)}
        shown = "    -  " if acc[mode] is None else f"{100 * acc[mode]:5.1f} %"
        print(f"  {mode:<19} accuracy {shown}   examples/s median {statistics.median(eps):7.1f}"
              f"  min {min(eps):7.1f}   {med['reference'] / med[mode]:6.2f}x the reference")
    x = out["x_reference"] = {m: round(med["reference"] / med[m], 2) for m in ANSWERING}
    print(f"  vs the reference's evaluation: generate {x['generate']:.2f}x, score "
          f"{x['score']:.2f}x; score vs generate {med['generate'] / med['score']:.2f}x "
          f"(ratios of median times); the encoder alone takes {med['encoder'] / med['generate']:.0%} of generate's "
          "time")
    out["costs"] = costs(args, {m: out[m]["examples_per_second_median"] for m in ANSWERING + ("reference",)})
    return out


def costs(args, examples_per_second: dict) -> dict:
    """Cost per 1M predictions of each mode (median examples/s at --price-per-hour) and the teacher's; printed."""
    from dss.bench.costs import DEFAULT_PRICE_PER_HOUR, PER, over, student_cost, teacher_for
    price = DEFAULT_PRICE_PER_HOUR if args.price_per_hour is None else args.price_per_hour
    teacher = teacher_for(args.run, args.rationale_file)  # read once: the same for every mode
    each = {m: student_cost(eps, price) for m, eps in examples_per_second.items()}
    out = {"per": PER, "price_per_hour": price, "student_usd": {m: c["usd"] for m, c in each.items()},
           "teacher": teacher, "teacher_over_student": {m: over(teacher, c) for m, c in each.items()}}
    print(f"  cost per {PER:,} predictions at {price} USD/hour: " +
          ", ".join(f"{m} ${usd:.4f}" for m, usd in out["student_usd"].items()))
    if teacher is None:
        print("  teacher: no extraction file prices its answers (--rationale-file)")
    else:
        print(f"  teacher ({teacher['model']}, {teacher['examples']} examples of {teacher['file']}"
              f"{', usage estimated' if teacher['estimated'] else ''}): ${teacher['usd']} per {PER:,}")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    rows, run, base, batch = setup(args)
    acc, times = timed(run, rows, args.repeats, batch, args.device)
    out = report(args, base, batch, len(rows), acc, times)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
