"""Three teacher samples per demo example, written by code: a stand-in for `dss extract --samples 3` on a task
whose teacher is code, so `rationales_per_example` can be measured offline.

    .venv/bin/python benchmarks/demo_samples.py [--out runs/demo-samples/rationales.jsonl]
    .venv/bin/dss bench --config configs/bench/demo-rationales.yaml

Sample 0 is the demo's own rationale (the kinds, in a fixed order: "fruit and toy ."); samples 1 and 2 say the
same thing in other words, as a sampled teacher would ("the fig is a fruit and the doll is a toy .", "toy
versus fruit : different kinds ."). All three reach the gold label, so with rationales_per_example=1 the
student trains on exactly the demo's rationale and with 3 on all three.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dss.tasks import get_task
from dss.tasks.demo import KIND_OF
from dss.teacher import store


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def samples(ex) -> list[str]:
    t1, t2 = ex.meta["things"]
    k1, k2 = KIND_OF[t1], KIND_OF[t2]
    verdict = "the same kind" if k1 == k2 else "different kinds"
    end = f"So the answer is {ex.llm_label} ."
    return [ex.llm_rationale.removesuffix(end).strip(),
            f"the {t1} is {_a(k1)} {k1} and the {t2} is {_a(k2)} {k2} .",
            f"{k2} versus {k1} : {verdict} ."]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo-samples/rationales.jsonl")
    args = p.parse_args(argv)
    records = []
    for ex in get_task("demo").load("train"):
        for k, why in enumerate(samples(ex)):
            records.append({"id": ex.id, "task": "demo", "split": "train", "teacher": "code:paraphrases",
                            "prompt_sha": "none", "sample": k, "status": "ok", "label": ex.llm_label,
                            "rationale": f"{why} So the answer is {ex.llm_label} .", "raw": "", "usage": {},
                            "latency_s": 0.0})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    store.write_records(args.out, records)
    print(f"wrote {len(records)} records ({len(records) // 3} examples x 3 samples) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
