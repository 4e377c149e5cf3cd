"""Inference with a trained student: labels, and rationales when asked (the rationale task runs too).

    predictions = predict("runs/demo/model", ["some input"], rationale=True)

The model folder's `dss.json` (written by `dss train`) says how training built inputs (method, prefixes);
a plain Hugging Face checkpoint without it is treated as a `standard` student (input -> label).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from dss import data as D
from dss.core.errors import ConfigError, DataError


def student_info(model_dir) -> dict:
    info = {"method": "standard", "label_prefix": "[label] ", "rationale_prefix": "[rationale] ",
            "max_input_length": 512, "eval_max_new_tokens": 32, "max_target_length": 256, "task": None}
    path = Path(model_dir) / "dss.json"
    if path.is_file():
        info.update(json.loads(path.read_text()))
    return info


def read_inputs(path) -> list[dict]:
    """Records with at least `input` (and optionally `id`, `label`) from a JSONL file."""
    from dss.core.io import read_jsonl_numbered
    numbered = read_jsonl_numbered(Path(path))
    if not numbered:
        raise DataError(f"{path}: no rows (expected JSON lines with an 'input' field)")
    for lineno, r in numbered:
        if "input" not in r or r["input"] is None or r["input"] == "":
            raise DataError(f"{path}:{lineno}: field 'input' is missing or empty")
        if not isinstance(r["input"], str):
            raise DataError(f"{path}:{lineno}: field 'input' must be text, got {type(r['input']).__name__}")
        if not r["input"].strip():
            raise DataError(f"{path}:{lineno}: field 'input' is empty")
        r.setdefault("id", f"{Path(path).stem}-{lineno}")
    return [r for _, r in numbered]


def predict(model_dir, inputs: list[str], rationale: bool = False, batch_size: int = 32,
            max_new_tokens: int | None = None) -> list[dict]:
    """[{"prediction": label, "rationale": text (when asked)}] for each input, by greedy decoding."""
    import torch
    from accelerate import Accelerator
    from transformers.utils import logging as hf_logging

    from dss.train import generate

    hf_logging.disable_progress_bar()   # a "Loading weights" bar would mix into the predictions on the terminal

    from dss.model import HUB_ID, load_pretrained
    if not Path(model_dir).is_dir() and not HUB_ID.fullmatch(str(model_dir)):
        raise ConfigError(f"--model {model_dir}: no such folder (a run's model folder is runs/NAME/model)")
    info = student_info(model_dir)
    if rationale and info["method"] not in ("dss", "single"):
        raise ConfigError(f"this student was trained with method {info['method']!r}: it has no rationale "
                          "task (train with --method dss or single)")
    model, tokenizer = load_pretrained(str(model_dir), what="student")
    accelerator = Accelerator()  # picks the GPU when there is one
    model = model.to(accelerator.device)
    cfg = SimpleNamespace(method=info["method"], label_prefix=info["label_prefix"])
    single = info["method"] == "single"
    label_tokens = max_new_tokens or (info["max_target_length"] if single else info["eval_max_new_tokens"])
    with torch.no_grad():
        texts = generate(model, tokenizer, [D.eval_source(SimpleNamespace(input=x), cfg) for x in inputs],
                         accelerator, batch_size, info["max_input_length"], label_tokens)
    out = [{"prediction": D.parse_prediction(t, cfg)} for t in texts]
    if rationale and single:  # the single target holds the rationale before the label
        for o, t in zip(out, texts):
            o["rationale"] = t.rsplit(D.SINGLE_SEP.strip(), 1)[0].strip()
    elif rationale:
        sources = [info["rationale_prefix"] + x for x in inputs]
        texts = generate(model, tokenizer, sources, accelerator, batch_size, info["max_input_length"],
                         max_new_tokens or info["max_target_length"])
        for o, t in zip(out, texts):
            o["rationale"] = t.strip()
    return out
