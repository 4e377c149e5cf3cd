"""The data a run trains and evaluates on, from one place: the task's splits, the subset the protocol takes,
the teacher's answers attached, the training items (dss.student.batching), and the batches of every step.

    data = load_data(cfg)     # Data: task, items, valid, test, stats, splits (ids)
    for micro in step_batches(features, batch_order(features, cfg), start, cfg, accelerator, pad_id, kind): ...
"""
from __future__ import annotations

from dataclasses import dataclass

from dss.student import batching, fsdp
from dss.student.config import TrainConfig
from dss.student.evaluate import candidate_sets
from dss.student.messages import log
from dss.student.methods import METHODS
from dss.student.protocols import PROTOCOLS
from dss.tasks.base import carve_split, warn_unseen_labels
from dss.tasks.rationales import apply_rationales


def load_splits(cfg: TrainConfig):
    """(task, {split: examples}) as the task's loader gives them."""
    from dss.tasks import get_task

    task = get_task(cfg.task, **cfg.task_options)
    return task, {s: task.load(s, cfg.data_dir) for s in ("train", "valid", "test")}


def eos_text(cfg: TrainConfig) -> str:
    """The student tokenizer's EOS token as text: "</s>" for tiny (and T5); a pretrained one's own."""
    if cfg.model == "tiny":
        return "</s>"
    from dss.student.model import load_pretrained_tokenizer
    return load_pretrained_tokenizer(cfg.model).eos_token


def data_fingerprint(cfg: TrainConfig) -> str:
    """The fingerprint a run with this config records for its data (see load_data)."""
    return batching.fingerprint(load_splits(cfg)[1], cfg.rationales)


@dataclass
class Data:
    """What a run trains and evaluates on: load_data's one result."""
    task: object
    items: list          # [examples][rows]: each training example's rows (dss.student.batching.Row)
    valid: list          # Examples
    test: list
    stats: dict          # counts for config.json / results.json, the data fingerprint
    splits: dict         # the ids of every example used, per split (the run folder's splits.json)


def load_data(cfg: TrainConfig) -> Data:
    """The only place examples come from.

    stats["fingerprint"] hashes the content of every split read (and of the rationale file): a run, a resume
    or a sweep cell counts as the same only when it trained on the same data.
    """
    log(f"loading {cfg.task} data")
    task, splits = load_splits(cfg)
    warn_unseen_labels(task, splits, log)
    stats = {"fingerprint": batching.fingerprint(splits, cfg.rationales)}
    train, valid = subsets(task, splits, cfg)
    test = splits["test"]
    if cfg.input_format == "reference":
        eos = eos_text(cfg)
        for ex in (e for part in (train, valid, test) for e in part):
            ex.input = task.reference_input(ex, eos)
    stats["train_subset"] = len(train)
    if cfg.rationales:
        stats["rationale_file"] = apply_rationales(train, cfg.rationales, task)
    if PROTOCOLS[cfg.protocol].teacher_parsing == "reference":
        stats["teacher_parsing"] = reference_parsing(task, train, cfg)
    items, item_stats = batching.training_items(train, cfg)
    stats.update(item_stats)
    check_usable(cfg, task, train, items, stats)
    cap = cfg.max_eval_examples
    valid, test = valid[:cap], test[:cap]
    if cfg.eval_mode == "score":
        candidate_sets(task, valid + test)  # a task without a closed answer set fails now, not after training
    stats.update(valid_examples=len(valid), test_examples=len(test))
    log(f"{len(splits['train'])} train examples, {len(train)} in the {100 * cfg.train_fraction:g} % subset, "
        f"{len(items)} used; {len(valid)} valid, {len(test)} test")
    ids = {"train": [e.id for e in train], "valid": [e.id for e in valid], "test": [e.id for e in test]}
    unused = [e.id for e in train if not batching.example_rows(e, cfg)]
    if unused:
        ids["train_unused"] = unused
    return Data(task, items, valid, test, stats, ids)


def subsets(task, splits: dict, cfg: TrainConfig) -> tuple[list, list]:
    """(the train subset, the valid split) as cfg.protocol takes them. dss: a nested subset of the train split
    (valid carved before). reference (run.py): train_test_split(test_size=1 - fraction, seed)["train"] of the
    task's whole train file and, for a task without a valid split, valid carved from that subset (10 %,
    seed 0); sizes round as that function rounds (dss.tasks.base.carve_split is it, index for index)."""
    if PROTOCOLS[cfg.protocol].subsets == "nested":
        return batching.nested_subset(splits["train"], cfg.train_fraction, cfg.seed), splits["valid"]
    pool, carves_valid = task.reference_train(cfg.data_dir)
    if cfg.train_fraction < 1:
        keep, _ = carve_split(len(pool), 1.0 - cfg.train_fraction, cfg.seed)
        pool = [pool[i] for i in keep]
    if not carves_valid:
        return pool, splits["valid"]
    keep, held = carve_split(len(pool), 0.1, 0)
    return [pool[i] for i in keep], [pool[i] for i in held]


def reference_parsing(task, train: list, cfg: TrainConfig) -> dict:
    """Under protocol=reference, the teacher's labels and rationales as the reference code reads the released
    completions (dss.tasks.reference, flaws included). Returns counts: changed labels, ' ' labels."""
    from dss.core.errors import ConfigError
    if cfg.rationales:
        raise ConfigError("protocol=reference reads the released PaLM completions as the reference code does; "
                          "with rationales=FILE use protocol=dss")
    parse = task.reference_parser()
    if parse is None:
        log(f"protocol {cfg.protocol}: task {task.name} has no reference parser; its teacher answers are dss's")
        return {"parser": "dss"}
    raw = task.released_completions("train", cfg.data_dir)
    changed = blank = 0
    for ex in train:
        if ex.id in raw:
            rationale, label = parse(raw[ex.id])
            changed += label != ex.llm_label
            blank += label == " "
            ex.llm_rationale, ex.llm_label = rationale, label
    return {"parser": "reference", "labels_changed": changed, "labels_blank": blank}


def check_usable(cfg: TrainConfig, task, train, items, stats: dict) -> None:
    """Stop before training when the data cannot train what cfg asks for, naming the cause; when only some
    examples lack a rationale, say how many (results.json counts them too, as missing_rationale)."""
    from dss.core.errors import DataError

    method = METHODS[cfg.method]
    if not train:
        raise DataError(f"task {cfg.task}: the train split is empty; nothing to train on")
    if cfg.rationales:
        c = stats["rationale_file"]
        origin = (f"{cfg.rationales} gave {c['matched']} of {len(train)} train examples a parsed answer "
                  f"({c['missing']} have no record in it, {c['unparsed']} only unusable answers)")
        if not c["matched"] and c["missing"] == len(train):
            origin += "; its ids match none of them: was it extracted for another task or split?"
    else:
        origin = task.rationale_origin(cfg.data_dir)
    if not items:
        what = "label" if stats["dropped_no_label"] else "rationale"
        raise DataError(f"none of the {len(train)} train examples has a teacher {what} to train on "
                        f"(method={cfg.method}, label source {method.label_source(cfg.labels)}): {origin}")
    missing = stats["missing_rationale"] if method.rationale_task else 0
    if missing == len(items):
        raise DataError(f"method {cfg.method} trains on teacher rationales, but none of the {len(items)} train "
                        f"examples has one: {origin}. Use method=standard to train on labels alone")
    if missing:
        log(f"{missing} of {len(items)} train examples have no usable rationale: they train the label task only")


def batch_order(features, cfg: TrainConfig, processes: int = 1) -> batching.LengthGroupedBatchSampler:
    return batching.LengthGroupedBatchSampler([f["length"] for f in features], cfg.batch_size // cfg.grad_accum,
                                       cfg.grad_accum, cfg.seed, cfg.group_by_length,
                                       keep_last=PROTOCOLS[cfg.protocol].keep_last_batch,
                                       min_last=processes * cfg.grad_accum)


def step_batches(features, order, start: int, cfg: TrainConfig, accelerator, pad_id: int, kind,
                 split_tasks: bool = True):
    """The micro-batches of each optimizer step from `start` to max_steps, collated on this process's device.

    Step s is batch s mod steps_per_epoch of epoch s // steps_per_epoch, and an epoch's batches are a pure
    function of (seed, epoch): a run resumed at any step sees what the uninterrupted run saw. Each process
    takes its contiguous slice of every global micro-batch.
    """
    per_epoch, k = order.steps_per_epoch, cfg.grad_accum
    both_tasks = fsdp.is_fsdp(accelerator) and METHODS[cfg.method].rationale_task  # the same forwards everywhere
    rank, world = accelerator.process_index, accelerator.num_processes
    step = start
    while step < cfg.max_steps:
        epoch, done = divmod(step, per_epoch)
        batches = order.epoch_batches(epoch)
        for i in range(done, min(per_epoch, done + cfg.max_steps - step)):
            micro = []
            for b in batches[i * k:(i + 1) * k]:
                # this process's contiguous slice (a kept last step's micro-batch may not divide evenly)
                mine = [features[j] for j in b[len(b) * rank // world:len(b) * (rank + 1) // world]]
                micro.append(kind.to_device(kind.collate(mine, pad_id, split_tasks, both_tasks), accelerator.device))
            yield micro
            step += 1
