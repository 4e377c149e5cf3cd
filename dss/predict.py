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
from dss.config import ConfigError
from dss.tasks.base import DataError


def student_info(model_dir) -> dict:
    info = {"method": "standard", "label_prefix": "[label] ", "rationale_prefix": "[rationale] ",
            "max_input_length": 512, "eval_max_new_tokens": 32, "max_target_length": 256, "task": None}
    path = Path(model_dir) / "dss.json"
    if path.is_file():
        info.update(json.loads(path.read_text()))
    return info


def read_inputs(path) -> list[dict]:
    """Records with at least `input` (and optionally `id`, `label`) from a JSONL file."""
    from dss.sources import read_jsonl
    rows = read_jsonl(Path(path))
    for i, r in enumerate(rows, 1):
        if not isinstance(r.get("input"), str) or not r["input"].strip():
            raise DataError(f"{path}:{i}: field 'input' is missing or empty")
        r.setdefault("id", f"{Path(path).stem}-{i}")
    return rows


def predict(model_dir, inputs: list[str], rationale: bool = False, batch_size: int = 32,
            max_new_tokens: int | None = None) -> list[dict]:
    """[{"prediction": label, "rationale": text (when asked)}] for each input, by greedy decoding."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from dss.train import generate

    hf_logging.disable_progress_bar()   # a "Loading weights" bar would mix into the predictions on the terminal

    info = student_info(model_dir)
    if rationale and info["method"] not in ("dss", "single"):
        raise ConfigError(f"this student was trained with method {info['method']!r}: it has no rationale "
                          "task (train with --method dss or single)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load a model from {model_dir}: {e}") from None
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
