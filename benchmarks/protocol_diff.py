"""How dss's protocol and the reference's differ on the released data (the figures of docs/protocol.md):

    .venv/bin/python benchmarks/protocol_diff.py --data-dir ../shared/dss-data

Per task: train labels the two parsers read differently from PaLM's answers, answers dss leaves unparsed (the
reference trains them on a ' ' target), and how many train examples the two protocols' subsets share at
12.5 % (seed 0).
"""
from __future__ import annotations

import argparse

from dss.student.config import TrainConfig
from dss.student.data import load_splits, subsets
from dss.tasks import get_task


def parse_diff(task_name: str, data_dir) -> dict:
    task = get_task(task_name)
    raw = task.released_completions("train", data_dir)
    examples = {e.id: e for e in task.reference_train(data_dir)[0]}
    parse = task.reference_parser()
    differ = unparsed = 0
    for rid, text in raw.items():
        ours = task.parse_completion(text, examples.get(rid)).label
        theirs = parse(text)[1]
        unparsed += ours is None
        differ += ours is not None and ours != theirs
    return {"answers": len(raw), "labels_differ": differ, "dss_unparsed": unparsed}


def subset_overlap(task_name: str, data_dir, fraction: float = 0.125, seed: int = 0) -> dict:
    out = {}
    for protocol in ("dss", "reference"):
        cfg = TrainConfig(task=task_name, data_dir=str(data_dir), train_fraction=fraction, seed=seed,
                          protocol=protocol)
        task, splits = load_splits(cfg)
        train, valid = subsets(task, splits, cfg)
        out[protocol] = ({e.id for e in train}, len(valid))
    shared = len(out["dss"][0] & out["reference"][0])
    return {"dss_train": len(out["dss"][0]), "reference_train": len(out["reference"][0]), "shared": shared,
            "dss_valid": out["dss"][1], "reference_valid": out["reference"][1]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--tasks", default="esnli,cqa,svamp")
    args = p.parse_args(argv)
    print("| task | PaLM train answers | labels read differently | dss: unparsed (reference: ' ' target) | "
          "12.5 % subset, seed 0: dss / reference / shared | valid: dss / reference |")
    print("|---|---|---|---|---|---|")
    for name in args.tasks.split(","):
        d, s = parse_diff(name, args.data_dir), subset_overlap(name, args.data_dir)
        print(f"| {name} | {d['answers']:,} | {d['labels_differ']} | {d['dss_unparsed']} | "
              f"{s['dss_train']:,} / {s['reference_train']:,} / {s['shared']:,} | "
              f"{s['dss_valid']:,} / {s['reference_valid']:,} |")


if __name__ == "__main__":
    main()
