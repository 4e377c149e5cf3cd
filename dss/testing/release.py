"""Tiny data folders in the original release layout, for tests and benchmarks (dss.tasks.sources reads them)."""
from __future__ import annotations

import json
from pathlib import Path


def write_release(root: Path, task: str, split: str, rows: list[dict], completions: list[str] | None = None,
                  batch: int = 1000) -> Path:
    """Write rows (and aligned completions, in batches of `batch`) in the release layout under root."""
    d = Path(root) / task
    (d / "llm").mkdir(parents=True, exist_ok=True)
    with open(d / f"{task}_{split}.json", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    if completions is not None:
        for k in range(0, len(completions), batch):
            (d / "llm" / f"{split}_CoT_{k // batch}.json").write_text(json.dumps(completions[k:k + batch]))
    return Path(root)


def cqa_rows(n: int, split: str = "train") -> list[dict]:
    """n cqa rows whose answer is choice i % 5 (the fake teacher's default responder reads the choices)."""
    rows = []
    for i in range(n):
        choices = [f"thing{i}a", f"thing{i}b", f"place {i}", f"idea{i}", f"tool{i}"]
        rows.append({"id": f"{split}{i}", "question": f"Where would you find item {i}?", "choices": choices,
                     "answer": choices[i % 5], "abstractive_explanation": "", "extractive_explanation": ""})
    return rows


def cqa_completions(rows: list[dict]) -> list[str]:
    """A correct PaLM-style completion per row, with the few-shot continuation PaLM kept writing."""
    out = []
    for i, r in enumerate(rows):
        letter, answer = "abcde"[i % 5], r["answer"]
        out.append(f"Item {i} is found at {answer}. So the answer is ({letter}) {answer}."
                   "\n\nQ: next question?\nAnswer Choices:\n(a) x")
    return out


def write_cqa(root: Path, sizes: dict[str, int], with_teacher: bool = True, batch: int = 1000) -> Path:
    """A cqa release folder with `sizes` rows per split (e.g. {"train": 40, "test": 10})."""
    for split, n in sizes.items():
        rows = cqa_rows(n, split)
        write_release(root, "cqa", split, rows, cqa_completions(rows) if with_teacher else None, batch)
    return Path(root)
