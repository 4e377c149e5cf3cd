"""The GPU check, prepared for when a CUDA machine is lent (run: bash benchmarks/gpu_check.sh; dry run on CPU:
bash benchmarks/gpu_check.sh --dry-run).

1. Throughput: T5 v1.1 base- and large-shaped students built from their configs (random weights, no hub; a
   sentencepiece tokenizer trained here, 32,128 embedding rows as in the real ones) train on synthetic DSS rows
   (inputs `--input` tokens, rationales `--rationale`, 3 labels) at global batch `--batch` in bf16: `dss` (what
   `dss train` runs) against `baseline` (the reference code's two-pass Seq2SeqTrainer), in A-B-B-A order
   (`dss speed`'s machinery). Printed per model: examples/s, tokens/s, peak memory, the ratio, and model-FLOP
   utilisation = 6 x parameters x tokens/s / the GPU's dense bf16 peak (an upper-bound count: it charges every
   token to every parameter, encoder and decoder alike).
2. One GPU vs `accelerate launch --num_processes 1`: the same tiny `dss train` both ways must log the same
   losses and the same test accuracy.
3. Evaluation against the reference's (benchmarks/eval_modes.py with --device cuda): a tiny demo student is
   trained until it answers (a student that never ends its answer would charge the reference's 64-token decoding
   for nothing), then closed-set scoring, dss's decoding and the reference's evaluation are timed in rotation on
   its test rows; printed: examples/s of each and the ratios.

Everything goes to --out (gpu_check.json, gpu_check.md); the script never needs the network.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {"t5-v1_1-base": {"d_model": 768, "d_kv": 64, "d_ff": 2048, "layers": 12, "heads": 12},
          "t5-v1_1-large": {"d_model": 1024, "d_kv": 64, "d_ff": 2816, "layers": 24, "heads": 16}}
DRY = {"tiny-dry": {"d_model": 32, "d_kv": 16, "d_ff": 64, "layers": 1, "heads": 2}}
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12,
             "4090": 165e12}  # dense bf16 FLOP/s, vendors' data sheets


def synthetic_rows(n: int, input_words: int, rationale_words: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = [f"w{k}" for k in range(3000)]
    labels = ["entailment", "neutral", "contradiction"]
    return [{"id": f"s{i}", "input": " ".join(rng.choices(words, k=rng.randint(input_words // 2, input_words))),
             "label": rng.choice(labels),
             "rationale": " ".join(rng.choices(words, k=rng.randint(rationale_words // 2, rationale_words)))}
            for i in range(n)]


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in device_name), None)


def throughput(args, out: Path, shapes: dict, device_name: str) -> list[dict]:
    from dss.bench.train_speed import speed, summarize
    from dss.student.config import TrainConfig
    from dss.testing.hf_folders import t5_folder
    rows = synthetic_rows(args.batch * (args.steps + args.warmup + 2), args.input // 2, args.rationale // 2)
    data = out / "synthetic.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = [r["input"] for r in rows[:2000]] + [r["rationale"] for r in rows[:2000]] + [r["label"] for r in rows]
    results = []
    for name, dims in shapes.items():
        folder = t5_folder(out / name, texts, vocab_size=4000, dims=dims, model_vocab=32128)
        cfg = TrainConfig(task="custom", task_options={"train_file": str(data)}, model=str(folder), method="dss",
                          batch_size=args.batch, mixed_precision="no" if args.dry_run else "bf16",
                          max_input_length=args.input, max_target_length=args.rationale, lr=5e-5,
                          output_dir=str(out / f"{name}-run"), tensorboard=False, threads=1 if args.dry_run else 0)
        runs = speed(cfg, ["dss", "baseline"], args.steps, args.warmup, args.repeats)
        params = sum(p.numel() for p in __import__("transformers").AutoModelForSeq2SeqLM.from_pretrained(
            folder).parameters())
        peak = peak_flops(device_name)
        for s in summarize(runs):
            s.update(model=name, parameters=params,
                     mfu=round(6 * params * s["tokens_per_second"] / peak, 3) if peak else None)
            results.append(s)
    return results


def launch_check(out: Path, dry: bool) -> dict:
    """The same tiny run with and without accelerate launch: same losses, same test accuracy."""
    base = ["-m", "dss", "train", "--task", "demo", "--max-steps", "20", "--eval-steps", "20", "--d-model", "32",
            "--d-ff", "64", "--heads", "2", "--layers", "1", "--no-tensorboard", "--log-steps", "1", "--dropout", "0"]
    plain, launched = out / "plain", out / "launched"
    subprocess.run([sys.executable, *base, "--output-dir", str(plain), "--overwrite"], check=True)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1"]
    cmd += ["--cpu"] if dry else ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    subprocess.run([*cmd, *base, "--output-dir", str(launched), "--overwrite"], check=True)
    losses = [[json.loads(x)["loss"] for x in open(d / "metrics.jsonl") if '"loss"' in x] for d in (plain, launched)]
    accs = [json.loads((d / "results.json").read_text())["test_accuracy"] for d in (plain, launched)]
    same = len(losses[0]) == len(losses[1]) and all(abs(a - b) < 1e-5 for a, b in zip(*losses))
    return {"same_losses": same, "test_accuracy": accs, "steps": len(losses[0])}


def eval_check(out: Path, dry: bool) -> dict:
    """eval_modes.py on one trained demo student, on the GPU (on CPU, 64 rows, in a dry run)."""
    run = out / "eval-student"
    subprocess.run([sys.executable, "-m", "dss", "train", "--task", "demo", "--method", "dss", "--max-steps",
                    "20" if dry else "400", "--no-tensorboard", "--output-dir", str(run), "--overwrite"], check=True)
    cmd = [sys.executable, str(Path(__file__).with_name("eval_modes.py")), str(run), "--json", "--device",
           "cpu" if dry else "cuda", "--repeats", "1" if dry else "3"] + (["--limit", "64"] if dry else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    print(done.stdout, end="")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/gpu-check")
    p.add_argument("--dry-run", action="store_true", help="on CPU, a tiny shape, a few steps: check the script")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--input", type=int, default=512)
    p.add_argument("--rationale", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    import torch
    if args.dry_run:
        args.batch, args.input, args.rationale, args.steps, args.warmup, args.repeats = 4, 64, 32, 2, 1, 2
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here (use --dry-run to check the script on CPU)")
    device = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report = {"device": device, "torch": torch.__version__, "batch": args.batch, "input": args.input,
              "rationale": args.rationale, "throughput": throughput(args, out, DRY if args.dry_run else SHAPES, device)}
    report["accelerate_launch"] = launch_check(out, args.dry_run)
    report["evaluation"] = eval_check(out, args.dry_run)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    lines = [f"GPU check on {device} (torch {torch.__version__}), batch {args.batch}, inputs <= {args.input}, "
             f"rationales <= {args.rationale}, {'fp32' if args.dry_run else 'bf16'}", "",
             "| model | variant | examples/s | tokens/s | peak MB | x baseline (min) | MFU |",
             "|---|---|---|---|---|---|---|"]
    for s in report["throughput"]:
        lines.append(f"| {s['model']} | {s['variant']} | {s['examples_per_second']:.1f} | "
                     f"{s['tokens_per_second']:.0f} | {s['peak_memory_mb']:.0f} | {s['x_baseline']} "
                     f"({s['x_baseline_min']}) | {s['mfu']} |")
    lc = report["accelerate_launch"]
    lines += ["", f"accelerate launch vs plain: same losses over {lc['steps']} steps: {lc['same_losses']}; "
              f"test accuracy {lc['test_accuracy']}"]
    ev = report["evaluation"]
    lines += ["", f"evaluation, demo student, {ev['rows']} test rows on {ev['device']}: "
              + ", ".join(f"{m} {ev[m]['examples_per_second_median']:.0f} ex/s"
                          for m in ("score", "generate", "reference"))
              + f"; vs the reference: score {ev['x_reference']['score']}x, generate {ev['x_reference']['generate']}x",
              f"({report['seconds']} s)"]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if lc["same_losses"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
