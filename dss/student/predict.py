"""Inference with a trained student: labels, and rationales when asked (the rationale task runs too).

    predictions = predict("runs/demo/model", ["some input"], rationale=True)

The model folder's `dss.json` (written by `dss train`) says how training built inputs (method, prefixes);
a plain Hugging Face checkpoint without it is treated as a `standard` student (input -> label).
"""
from __future__ import annotations

from pathlib import Path

from dss.core.errors import ConfigError, DataError
from dss.core.io import read_jsonl_numbered
from dss.student.methods import METHODS
from dss.student.run_folder import student_info


def read_inputs(path) -> list[dict]:
    """Records with at least `input` (and optionally `id`, `label`) from a JSONL file."""
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
        cands = r.get("candidates")
        if cands is not None and (not isinstance(cands, list) or not cands or
                                  not all(isinstance(c, str) and c for c in cands)):
            raise DataError(f"{path}:{lineno}: field 'candidates' must be a list of answer texts")
        r.setdefault("id", f"{Path(path).stem}-{lineno}")
    return [r for _, r in numbered]


def predict(model_dir, inputs: list[str], rationale: bool = False, batch_size: int = 32,
            max_new_tokens: int | None = None, candidates: list[list[str]] | None = None) -> list[dict]:
    """[{"prediction": label, "rationale": text (when asked)}] for each input: by greedy decoding, or with
    `candidates` (one list per input) the candidate the label task scores highest, with "scores"."""
    from accelerate import Accelerator
    from transformers.utils import logging as hf_logging

    from dss.student.evaluate import generate, score
    from dss.student.model import HUB_ID, load_pretrained

    hf_logging.disable_progress_bar()   # a "Loading weights" bar would mix into the predictions on the terminal
    if not Path(model_dir).is_dir() and not HUB_ID.fullmatch(str(model_dir)):
        raise ConfigError(f"--model {model_dir}: no such folder (a run's model folder is runs/NAME/model)")
    info = student_info(model_dir)
    method = METHODS[info["method"]]
    if rationale and not method.explains:
        raise ConfigError(f"this student was trained with method {method.name!r}: it has no rationale "
                          "task (train with --method dss or single)")
    model, tokenizer = load_pretrained(str(model_dir), what="student")
    accelerator = Accelerator()  # picks the GPU when there is one
    model = model.to(accelerator.device)
    label_tokens = max_new_tokens or (info["max_target_length"] if method.rationale_in_target
                                      else info["eval_max_new_tokens"])
    sources = [method.eval_source(x, info["label_prefix"]) for x in inputs]
    prompts = {"label": None, "rationale": None}
    if method.shared_encoder:  # the task prefix starts the decoder (dss.student.shared)
        from dss.student.shared import prompt_ids
        prompts = {k: prompt_ids(tokenizer, info[f"{k}_prefix"]) for k in prompts}
    if candidates is not None:
        if method.rationale_in_target:
            raise ConfigError("a `single` student writes its rationale before the label: it cannot score candidates")
        scores = score(model, tokenizer, sources, candidates, accelerator, batch_size, info["max_input_length"],
                       info["max_target_length"], prompts["label"])
        out = [{"prediction": c[max(range(len(c)), key=s.__getitem__)],
                "scores": {k: round(v, 4) for k, v in zip(c, s)}} for c, s in zip(candidates, scores)]
    else:
        texts = generate(model, tokenizer, sources, accelerator, batch_size, info["max_input_length"],
                         label_tokens, prompts["label"])
        out = [{"prediction": method.parse_prediction(t)} for t in texts]
    if rationale and method.rationale_in_target:  # the single target holds the rationale before the label
        for o, t in zip(out, texts):
            o["rationale"] = method.split_rationale(t)
    elif rationale:
        sources = inputs if method.shared_encoder else [info["rationale_prefix"] + x for x in inputs]
        texts = generate(model, tokenizer, sources, accelerator, batch_size, info["max_input_length"],
                         max_new_tokens or info["max_target_length"], prompts["rationale"])
        for o, t in zip(out, texts):
            o["rationale"] = t.strip()
    return out


def scored(rows: list[dict], preds: list[dict], task) -> tuple[list[dict], float | None]:
    """Prediction records (id, input, prediction[, rationale][, label, correct]) and the accuracy, where rows
    carry labels and a task scores them (else None)."""
    records, correct = [], []
    for r, p in zip(rows, preds, strict=True):
        rec = {"id": r["id"], "input": r["input"], **p}
        if "label" in r:
            rec["label"] = r["label"]
            if task is not None:
                rec["correct"] = task.is_correct(p["prediction"], str(r["label"]))
                correct.append(rec["correct"])
        records.append(rec)
    return records, (sum(correct) / len(correct) if correct else None)
