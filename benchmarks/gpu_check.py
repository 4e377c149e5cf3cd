"""The GPU check, prepared for when a CUDA machine is lent (run: bash benchmarks/gpu_check.sh; dry run on CPU:
bash benchmarks/gpu_check.sh --dry-run). Every setting comes from plan(device, dry_run): a dry run differs only
in the device, the model shapes and the sizes and step counts, so it builds every configuration the GPU run does.

1. Throughput: T5 v1.1 base- and large-shaped students built from their configs (random weights, no hub; a
   sentencepiece tokenizer trained here, 32,128 embedding rows as in the real ones) train on synthetic DSS rows
   (inputs `--input` tokens, rationales `--rationale`, 3 labels) at global batch `--batch`: `dss` (what
   `dss train` runs) against `baseline` (the reference code's two-pass Seq2SeqTrainer), in A-B-B-A order
   (`dss speed`'s machinery), each in its own process on one GPU. Both in bf16 (the headline ratio: like with
   like; bf16 is the reference's --bf16 flag), then both in fp32 with TF32 off (torch's default; the
   reference's default precision). Printed per model and precision: examples/s, tokens/s, achieved TFLOP/s,
   peak memory, the ratio, and in bf16 the model-FLOP utilisation: model_flops() (the encoder-decoder count)
   per example x examples/s / the GPU's dense bf16 peak (peak_flops(); a GPU it does not know gets none).
2. One GPU vs `accelerate launch --num_processes 1`: the same tiny `dss train` both ways, in fp32 with
   deterministic kernels (benchmarks/dss_deterministic.py), must log the same losses and test accuracy.
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
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = {"t5-v1_1-base": {"d_model": 768, "d_kv": 64, "d_ff": 2048, "layers": 12, "heads": 12},
          "t5-v1_1-large": {"d_model": 1024, "d_kv": 64, "d_ff": 2816, "layers": 24, "heads": 16}}
DRY_SHAPES = {"tiny-dry": {"d_model": 32, "d_kv": 16, "d_ff": 64, "layers": 1, "heads": 2}}
# sizes and step counts, the GPU run's and the dry run's: launch_steps for step 2, eval_* for step 3
SIZES = {"batch": 64, "input": 512, "rationale": 128, "steps": 10, "warmup": 3, "repeats": 2, "launch_steps": 20,
         "eval_train_steps": 400, "eval_repeats": 3, "eval_limit": None}
DRY_SIZES = {"batch": 4, "input": 64, "rationale": 32, "steps": 2, "warmup": 1, "repeats": 2, "launch_steps": 20,
             "eval_train_steps": 20, "eval_repeats": 1, "eval_limit": 64}
# Dense bf16 tensor-core peaks in FLOP/s (without 2:4 sparsity: half the data sheets' starred figures), told
# apart by the name torch.cuda.get_device_name() reports ("NVIDIA H100 80GB HBM3" is the SXM part). The first
# pattern that matches wins; a name no pattern matches gets no MFU, never a neighbour's peak. Sources: NVIDIA's
# H100 data sheet (BF16 1,979 TFLOPS* SXM, 1,513* PCIe; NVL 1,671*, as NVIDIA's H100 page gives it, not
# rechecked here), H200 (1,979* SXM, 1,671* NVL; GH200 is H100 SXM silicon, 1,979*), A100 (312 dense, SXM
# and PCIe alike), L40S (733*), L4 (242*).
PEAKS = [(r"\bH100\b.*\bPCIE\b", 756e12, "H100 PCIe"), (r"\bH100\b.*\bNVL\b", 835e12, "H100 NVL"),
         (r"\bH100\b.*\b(HBM3|SXM\d?)\b", 989e12, "H100 SXM"), (r"\bH200\b.*\bNVL\b", 835e12, "H200 NVL"),
         (r"\bH200\b", 989e12, "H200 SXM"), (r"\bGH200\b", 989e12, "GH200"),
         (r"\bA100\b", 312e12, "A100"), (r"\bL40S\b", 362e12, "L40S"), (r"\bL4\b", 121e12, "L4")]


def peak_flops(device_name: str) -> tuple[float, str] | None:
    """(dense bf16 peak FLOP/s, which part) for a device name as torch reports it; None for a GPU not in PEAKS."""
    return next(((peak, part) for pattern, peak, part in PEAKS if re.search(pattern, device_name.upper())), None)


def model_flops(config, src_tokens: int, tgt_tokens: int) -> float:
    """Training FLOPs (forward + backward = 3 x forward; 2 per multiply-add) of one source of S = src_tokens
    tokens and its target of T = tgt_tokens through a T5-shaped encoder-decoder (transformers' T5Config):

        6 * (N_enc * S + N_dec * T + N_xkv * S)               weight matmuls, each token through its own stack
      + 6 * d_model * vocab * T                              lm_head
      + 12 * inner * (L_enc * S^2 + L_dec * T^2 + L_dec * T * S)   attention scores and weighted values:
                                                             encoder self, decoder self, cross

    with inner = heads * d_kv, f = 3 FFN matrices when gated (T5 v1.1), else 2, and
        N_enc = L_enc * (4 * d_model * inner + f * d_model * d_ff)   q, k, v, o; FFN
        N_dec = L_dec * (6 * d_model * inner + f * d_model * d_ff)   self q, k, v, o; cross q, o; FFN
        N_xkv = L_dec * 2 * d_model * inner                          cross k, v: on the encoder's S outputs
    Not counted: embedding lookups, norms, softmax, the relative position bias (no matmuls). The decoder's causal
    self-attention is counted whole (T^2), as its kernels compute it and PaLM's MFU counts it. Equals
    torch.utils.flop_counter's count of a T5 forward + backward (eager attention; tests/test_gpu_check.py)."""
    c, s, t = config, src_tokens, tgt_tokens
    inner, ffn = c.num_heads * c.d_kv, (3 if c.is_gated_act else 2) * c.d_model * c.d_ff
    l_enc, l_dec = c.num_layers, c.num_decoder_layers
    n_enc, n_dec = l_enc * (4 * c.d_model * inner + ffn), l_dec * (6 * c.d_model * inner + ffn)
    n_xkv = l_dec * 2 * c.d_model * inner
    attention = 12 * inner * (l_enc * s * s + l_dec * t * t + l_dec * t * s)
    return 6 * (n_enc * s + n_dec * t + n_xkv * s) + 6 * c.d_model * c.vocab_size * t + attention


def plan(device: str, dry_run: bool, sizes: dict | None = None) -> dict:
    """Every setting of the check, from one place. device: cuda, or cpu for a dry run. A dry run takes
    DRY_SHAPES and DRY_SIZES instead of SHAPES and SIZES (`sizes` overrides either, None keeps the table's) and
    nothing else differs: TrainConfig values, precisions, thread counts and commands are the GPU run's."""
    n = {**(DRY_SIZES if dry_run else SIZES), **{k: v for k, v in (sizes or {}).items() if v is not None}}
    return {
        "device": device, "sizes": n, "shapes": DRY_SHAPES if dry_run else SHAPES,
        # throughput: dss and the baseline at each precision, the same for both; bf16 is the headline
        "precisions": ["bf16", "no"],
        "train": {"method": "dss", "batch_size": n["batch"], "max_input_length": n["input"],
                  "max_target_length": n["rationale"], "lr": 5e-5, "tensorboard": False,
                  "threads": None},  # None: torch's choice (a positive int is the other valid value)
        # step 2: fp32, deterministic kernels, one thread (CPU sums grouped alike): the losses must agree to a
        # few fp32 ulps (deterministic kernels on one device: bitwise, in principle)
        "launch": {"steps": n["launch_steps"], "precision": "no", "threads": 1, "tolerance": 1e-6,
                   "accelerate": ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
                                  "--dynamo_backend", "no"] + (["--cpu"] if device == "cpu" else [])},
        "eval": {"train_steps": n["eval_train_steps"], "precision": "bf16", "repeats": n["eval_repeats"],
                 "limit": n["eval_limit"]},
    }


def train_config(p: dict, folder: Path, data: Path, out: Path, precision: str):
    """The TrainConfig of one model's throughput runs at one precision (validated as `dss train` validates)."""
    from dss.student.config import TrainConfig
    return TrainConfig(task="custom", task_options={"train_file": str(data)}, model=str(folder),
                       output_dir=str(out), mixed_precision=precision, **p["train"])


def synthetic_rows(n: int, input_words: int, rationale_words: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = [f"w{k}" for k in range(3000)]
    labels = ["entailment", "neutral", "contradiction"]
    return [{"id": f"s{i}", "input": " ".join(rng.choices(words, k=rng.randint(input_words // 2, input_words))),
             "label": rng.choice(labels),
             "rationale": " ".join(rng.choices(words, k=rng.randint(rationale_words // 2, rationale_words)))}
            for i in range(n)]


def example_flops(cfg) -> float:
    """Mean model_flops of one example (its label row and its rationale row, each at its own token counts) over
    the data cfg trains on: what MFU divides by, for dss and the baseline alike (padding is not counted)."""
    from transformers import AutoConfig

    from dss.student import batching, kinds
    from dss.student.data import load_data
    from dss.student.model import load_pretrained_tokenizer
    items = load_data(cfg).items
    kind = kinds.kind_of(AutoConfig.from_pretrained(cfg.model), cfg.method)
    features = batching.cached_tokenize(items, load_pretrained_tokenizer(cfg.model), cfg,
                                        Path(cfg.output_dir) / "cache", kind)
    config = AutoConfig.from_pretrained(cfg.model)
    rows = [(len(s), len(t)) for f in features for s, t in zip(f["input_ids"], f["labels"])]
    return sum(model_flops(config, s, t) for s, t in rows) / len(features)


def parameters(folder: Path) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(folder)).num_parameters()


def throughput(p: dict, out: Path, device_name: str) -> list[dict]:
    from dss.bench.train_speed import speed, summarize
    from dss.testing.hf_folders import t5_folder
    n, peak = p["sizes"], peak_flops(device_name)
    rows = synthetic_rows(n["batch"] * (n["steps"] + n["warmup"] + 2), n["input"] // 2, n["rationale"] // 2)
    data = out / "synthetic.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = [r["input"] for r in rows[:2000]] + [r["rationale"] for r in rows[:2000]] + [r["label"] for r in rows]
    results = []
    for name, dims in p["shapes"].items():
        folder = t5_folder(out / name, texts, vocab_size=4000, dims=dims, model_vocab=32128)
        cfgs = {precision: train_config(p, folder, data, out / f"{name}-run", precision)
                for precision in p["precisions"]}  # every configuration made (and validated) before any runs
        flops, params = example_flops(cfgs["bf16"]), parameters(folder)
        for precision, cfg in cfgs.items():
            runs = speed(cfg, ["dss", "baseline"], n["steps"], n["warmup"], n["repeats"], baseline_precision="same")
            for s in summarize(runs):
                achieved = flops * s["examples_per_second"]
                s.update(model=name, parameters=params, flops_per_example=flops, tflops=float(f"{achieved / 1e12:.3g}"),
                         mfu=round(achieved / peak[0], 4) if peak and precision == "bf16" else None)
                results.append(s)
    return results


def launch_check(p: dict, out: Path) -> dict:
    """The same tiny run with and without accelerate launch, fp32 and deterministic: same losses, same test
    accuracy."""
    lc, steps = p["launch"], str(p["launch"]["steps"])
    base = [str(HERE / "dss_deterministic.py"), "train", "--task", "demo", "--max-steps", steps, "--eval-steps",
            steps, "--d-model", "32", "--d-ff", "64", "--heads", "2", "--layers", "1", "--no-tensorboard",
            "--log-steps", "1", "--dropout", "0", "--mixed-precision", lc["precision"], "--threads", str(lc["threads"])]
    plain, launched = out / "plain", out / "launched"
    subprocess.run([sys.executable, *base, "--output-dir", str(plain), "--overwrite"], check=True)
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", *lc["accelerate"], *base, "--output-dir",
                    str(launched), "--overwrite"], check=True)
    losses = [[json.loads(x)["loss"] for x in open(d / "metrics.jsonl") if '"loss"' in x] for d in (plain, launched)]
    accs = [json.loads((d / "results.json").read_text())["test_accuracy"] for d in (plain, launched)]
    diff = max((abs(a - b) / max(1.0, abs(a)) for a, b in zip(*losses)), default=0.0)
    same = len(losses[0]) == len(losses[1]) > 0 and diff <= lc["tolerance"] and accs[0] == accs[1]
    return {"same_losses": same, "max_relative_difference": diff, "tolerance": lc["tolerance"],
            "test_accuracy": accs, "steps": len(losses[0]), "precision": lc["precision"]}


def eval_check(p: dict, out: Path) -> dict:
    """eval_modes.py on one trained demo student, on the plan's device."""
    ev, run = p["eval"], out / "eval-student"
    subprocess.run([sys.executable, "-m", "dss", "train", "--task", "demo", "--method", "dss", "--max-steps",
                    str(ev["train_steps"]), "--mixed-precision", ev["precision"], "--no-tensorboard",
                    "--output-dir", str(run), "--overwrite"], check=True)
    cmd = [sys.executable, str(HERE / "eval_modes.py"), str(run), "--json", "--device", p["device"],
           "--repeats", str(ev["repeats"])] + (["--limit", str(ev["limit"])] if ev["limit"] else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    print(done.stdout, end="")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput_lines(report: dict) -> list[str]:
    peak = peak_flops(report["device"])
    mfu = (f"MFU against the {peak[1]}'s dense bf16 peak, {peak[0] / 1e12:.0f} TFLOP/s" if peak else
           f"MFU not reported: no known bf16 peak for {report['device']!r} (see PEAKS)")
    lines = [f"Throughput: bf16 (headline: dss vs the reference trainer, both bf16) and fp32 (TF32 off, torch's "
             f"default); TFLOP/s by model_flops (the encoder-decoder count); {mfu}", "",
             "| model | precision | variant | examples/s | tokens/s | TFLOP/s | peak MB | x baseline (min) | MFU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in report["throughput"]:
        lines.append(f"| {s['model']} | {'fp32' if s['precision'] == 'no' else s['precision']} | {s['variant']} | "
                     f"{s['examples_per_second']:.1f} | {s['tokens_per_second']:.0f} | {s['tflops']} | "
                     f"{s['peak_memory_mb']:.0f} | {s['x_baseline']} ({s['x_baseline_min']}) | {s['mfu']} |")
    for model in dict.fromkeys(s["model"] for s in report["throughput"]):
        eps = {(s["variant"], s["precision"]): s["examples_per_second"] for s in report["throughput"]
               if s["model"] == model}
        lines.append(f"\n{model}: dss in bf16 vs the reference in fp32 (its default): "
                     f"{eps['dss', 'bf16'] / eps['baseline', 'no']:.2f}x (medians)")
    return lines


def report_lines(report: dict) -> list[str]:
    lines = [f"GPU check on {report['device']} (torch {report['torch']}), batch {report['batch']}, inputs <= "
             f"{report['input']}, rationales <= {report['rationale']}", ""] + throughput_lines(report)
    lc = report["accelerate_launch"]
    lines += ["", f"accelerate launch vs plain, fp32, deterministic kernels: same losses over {lc['steps']} steps "
              f"(max relative difference {lc['max_relative_difference']:.1e}, tolerance {lc['tolerance']:.0e}) and "
              f"test accuracy: {lc['same_losses']}; test accuracy {lc['test_accuracy']}"]
    ev = report["evaluation"]
    lines += ["", f"evaluation, demo student, {ev['rows']} test rows on {ev['device']}: "
              + ", ".join(f"{m} {ev[m]['examples_per_second_median']:.0f} ex/s"
                          for m in ("score", "generate", "reference"))
              + f"; vs the reference: score {ev['x_reference']['score']}x, generate {ev['x_reference']['generate']}x",
              f"({report['seconds']} s)"]
    return lines


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/gpu-check")
    p.add_argument("--dry-run", action="store_true",
                   help="on CPU, a tiny shape and few steps, every other setting as on the GPU: check the script")
    for key, value in SIZES.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                       help=f"(default: {value} on a GPU, {DRY_SIZES[key]} in a dry run)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here (use --dry-run to check the script on CPU)")
    device = "cpu" if args.dry_run else "cuda"
    name = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    p = plan(device, args.dry_run, {k: getattr(args, k) for k in SIZES})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    report = {"device": name, "torch": torch.__version__, "batch": p["sizes"]["batch"], "input": p["sizes"]["input"],
              "rationale": p["sizes"]["rationale"], "plan": p, "throughput": throughput(p, out, name)}
    report["accelerate_launch"] = launch_check(p, out)
    report["evaluation"] = eval_check(p, out)
    report["seconds"] = round(time.time() - t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    lines = report_lines(report)
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if report["accelerate_launch"]["same_losses"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
