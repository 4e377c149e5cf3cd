"""ONNX Runtime against CTranslate2 for `dss export`, on a trained encoder-decoder student: greedy label-only
answers (at most 4 tokens) with each runtime in float32 and int8 (ONNX: dynamic quantization of the weights; a
plain greedy loop over an encoder and a cache-less decoder graph), and ONNX Runtime's encoder pass alone; the
same rows, batches of 64 sorted by length, one thread, tokenizing included, modes timed in rotation; then how
often the two runtimes' answers agree.

    .venv/bin/python benchmarks/runtime_choice.py runs/esnli-student [--limit 1000] [--repeats 5]

Needs `pip install onnx onnxruntime` (not a dss dependency) and the `fast` extra.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def onnx_student(model, tokenizer, folder: Path, quant: str):
    """(encoder, decoder) InferenceSessions of the student exported to ONNX in float32 or int8 (dynamic
    quantization of the weights): encoder ids, mask [batch, time] -> hidden [batch, time, d_model]; decoder
    (decoder ids [batch, steps], hidden, mask) -> next-token logits [batch, vocab] (no cache: label-only answers
    are a few tokens, so re-running the short prefix costs little)."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Encoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            return self.m.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state

    class Decoder(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, dec, hidden, mask):
            return self.m(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec).logits[:, -1]

    x = tokenizer(["a b c", "a b"], return_tensors="pt", padding=True)
    h = Encoder(model)(x["input_ids"], x["attention_mask"])
    dec = torch.zeros((2, 1), dtype=torch.long)
    paths = {"encoder": folder / "encoder.onnx", "decoder": folder / "decoder.onnx"}
    with torch.no_grad():
        torch.onnx.export(Encoder(model), (x["input_ids"], x["attention_mask"]), str(paths["encoder"]), dynamo=False,
                          input_names=["ids", "mask"], output_names=["h"],
                          dynamic_axes={"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}})
        torch.onnx.export(Decoder(model), (dec, h, x["attention_mask"]), str(paths["decoder"]), dynamo=False,
                          input_names=["dec", "h", "mask"], output_names=["logits"],
                          dynamic_axes={"dec": {0: "b", 1: "s"}, "h": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}})
    if quant == "int8":
        for k, path in list(paths.items()):
            quantize_dynamic(str(path), str(path.with_suffix(".int8.onnx")), weight_type=QuantType.QInt8)
            paths[k] = path.with_suffix(".int8.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return tuple(ort.InferenceSession(str(paths[k]), opts, providers=["CPUExecutionProvider"])
                 for k in ("encoder", "decoder"))


def onnx_generate(sessions, tokenizer, srcs: list[str], order: list[int], start: int, end: int, steps: int,
                  decode: bool = True) -> list[str]:
    """Greedy label-only answers (at most `steps` tokens), batches of 64 in `order`; decode False: the encoder
    pass alone."""
    import numpy as np
    encoder, decoder = sessions
    out = [""] * len(srcs)
    for i in range(0, len(order), 64):
        rows = order[i:i + 64]
        b = tokenizer([srcs[j] for j in rows], return_tensors="np", padding=True)
        mask = b["attention_mask"].astype(np.int64)
        (h,) = encoder.run(None, {"ids": b["input_ids"].astype(np.int64), "mask": mask})
        if not decode:
            continue
        dec = np.full((len(rows), 1), start, dtype=np.int64)
        done = np.zeros(len(rows), dtype=bool)
        for _ in range(steps):
            (logits,) = decoder.run(None, {"dec": dec, "h": h, "mask": mask})
            nxt = np.where(done, end, logits.argmax(-1))
            dec = np.concatenate([dec, nxt[:, None]], axis=1)
            done |= nxt == end
            if done.all():
                break
        for j, ids in zip(rows, dec[:, 1:]):
            out[j] = tokenizer.decode(ids, skip_special_tokens=True)
    return out


def timed(modes: dict, repeats: int) -> dict:
    """{mode: [seconds per repeat]}: an untimed warm-up of every mode, then the modes in rotation."""
    times = {m: [] for m in modes}
    for fn in modes.values():
        fn()
    names = list(modes)
    for r in range(repeats):
        for m in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            modes[m]()
            times[m].append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished `dss train` run folder of an encoder-decoder student")
    p.add_argument("--limit", type=int, default=1000, help="test rows (default: 1000)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds of every mode (default: 5)")
    args = p.parse_args(argv)
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from dss.core.io import read_jsonl
    from dss.student import export
    from dss.student.runtimes import Ct2Student

    torch.set_num_threads(1)
    run = Path(args.run)
    srcs = ["[label] " + r["input"] for r in read_jsonl(run / "predictions.jsonl")][:args.limit]
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]))  # as dss's evaluation batches them
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    model = AutoModelForSeq2SeqLM.from_pretrained(run / "model").eval()

    start, end = model.config.decoder_start_token_id, model.config.eos_token_id
    modes, answers = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for quant in ("float32", "int8"):
            sessions = onnx_student(model, tokenizer, Path(tmp), quant)
            modes[f"onnxruntime-{quant}-encoder-only"] = lambda s=sessions: onnx_generate(
                s, tokenizer, srcs, order, start, end, 4, decode=False)
            modes[f"onnxruntime-{quant}-generate"] = lambda s=sessions, q=quant: answers.__setitem__(
                f"onnxruntime-{q}", onnx_generate(s, tokenizer, srcs, order, start, end, 4))
            folder = export.export_folder(run / "model", quant)
            if not export.fresh(folder, run / "model"):
                export.export(run / "model", quant)
            student = Ct2Student(folder, 1, 64)
            modes[f"ctranslate2-{quant}-generate"] = lambda s=student, q=quant: answers.__setitem__(
                f"ctranslate2-{q}", s.generate(srcs, 4))
        times = timed(modes, args.repeats)
    print(f"{run}: {len(srcs)} test rows, 1 thread, batches of 64, {args.repeats} repeats in rotation")
    for m, ts in times.items():
        eps = [len(srcs) / t for t in ts]
        print(f"  {m:<36} examples/s median {statistics.median(eps):7.1f}  min {min(eps):7.1f}")
    for quant in ("float32", "int8"):  # the two runtimes' answers, row by row (checks the ONNX decoding loop)
        a, b = answers[f"onnxruntime-{quant}"], answers[f"ctranslate2-{quant}"]
        print(f"  {quant}: onnxruntime and ctranslate2 give the same answer on "
              f"{100 * sum(x == y for x, y in zip(a, b)) / len(a):.1f} % of rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
