"""A user's own dataset from a JSONL, CSV or saved Hugging Face dataset folder — the same Task interface.

    dss train --task custom --train-file my.jsonl [--valid-file v.jsonl] [--test-file t.jsonl]
              [--input-column input] [--label-column label] [--rationale-column rationale]

Without valid/test files, deterministic valid and test splits are carved out of the train file.
Bad rows stop with an error naming the file, the line and the field.
"""
from __future__ import annotations

import math
from pathlib import Path

from dss.core.errors import DataError
from dss.tasks import sources
from dss.tasks.base import Example, Parsed, Task, carve_split


def _text(rec: dict, col: str, where: str, required: bool) -> str | None:
    if col not in rec or rec[col] is None or rec[col] == "":
        if required:
            raise DataError(f"{where}: field {col!r} is missing or empty")
        return None
    value = rec[col]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: field {col!r} must be text, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):  # JSON's NaN/Infinity are numbers, not text
        raise DataError(f"{where}: field {col!r} must be text, got {value}")
    value = str(value).strip()
    if required and not value:
        raise DataError(f"{where}: field {col!r} is empty")
    return value or None


MAX_CLOSED_LABELS = 20


class Custom(Task):
    name = "custom"
    description = "your dataset: a JSONL/CSV file or saved HF dataset with input, label and optional rationale"
    source = "--train-file (and optional --valid-file, --test-file)"
    teacher = "teacher"

    def __init__(self, train_file=None, valid_file=None, test_file=None, input_column="input",
                 label_column="label", rationale_column="rationale", teacher_label_column=None,
                 id_column="id", valid_fraction=0.1, test_fraction=0.1, metric="accuracy", labels=None):
        self.files = {"train": train_file, "valid": valid_file, "test": test_file}
        self.input_column, self.label_column = input_column, label_column
        self.rationale_column, self.teacher_label_column = rationale_column, teacher_label_column
        self.id_column, self.metric = id_column, metric
        self.valid_fraction, self.test_fraction = valid_fraction, test_fraction
        self._label_set = tuple(labels) if labels else None  # the `labels` option: the closed label set
        self._columns: dict[str, list[str]] = {}  # file -> every column its rows have, for error messages
        self._files_checked = False
        if metric not in ("accuracy", "equation"):
            raise DataError(f"custom task: metric must be 'accuracy' or 'equation', got {metric!r}")

    @property
    def label_set(self) -> tuple[str, ...] | None:
        """The closed label set: given (labels=...), else inferred from the train split when its labels take
        at most MAX_CLOSED_LABELS values, each seen twice on average (else the answers are open text)."""
        if self._label_set is None and self.files["train"]:
            values = [e.label for e in self.load("train")]
            distinct = sorted(set(values))
            closed = len(distinct) <= MAX_CLOSED_LABELS and len(values) >= 2 * len(distinct)
            self._label_set = tuple(distinct) if closed else ()
        return self._label_set or None

    def load(self, split: str, data_dir=None) -> list[Example]:
        self.check_split(split)
        if not self.files["train"]:
            raise DataError("task 'custom' needs a train file (--train-file F.jsonl|F.csv|HF folder)")
        if not self._files_checked:
            self._check_no_row_in_two_files()
            self._files_checked = True
        if split != "train" and self.files[split]:
            return self._examples(Path(self.files[split]))
        examples = self._examples(Path(self.files["train"]))
        n_rows = len(examples)
        # carve missing splits deterministically: test first (from all rows), then valid from the rest
        if not self.files["test"]:
            rest, test_idx = carve_split(len(examples), self.test_fraction, seed=0)
            examples = [examples[i] for i in (test_idx if split == "test" else sorted(rest))]
        if split != "test" and not self.files["valid"]:
            train_idx, valid_idx = carve_split(len(examples), self.valid_fraction, seed=1)
            examples = [examples[i] for i in (valid_idx if split == "valid" else train_idx)]
        if not examples:  # a split carved from too few rows: say so here, not in the tokenizer's trainer
            carved = [f"{s} {getattr(self, f'{s}_fraction'):.0%}" for s in ("valid", "test") if not self.files[s]]
            raise DataError(f"{self.files['train']}: its {n_rows} row(s) leave no {split} rows after carving "
                            f"{' and '.join(carved)} out of them; add rows, or pass --valid-file/--test-file")
        return examples

    def _check_no_row_in_two_files(self) -> None:
        """Refuse one file given for two splits, or an id (from the id column) in two files: a test row that is
        also trained on, or that picks the checkpoint, inflates the accuracy measured on it. (Carved splits
        cannot share an id: ids are unique within a file.)"""
        given = {split: Path(f) for split, f in self.files.items() if f}
        if len(given) < 2:
            return
        split_of: dict[Path, str] = {}
        for split, path in given.items():
            if path.resolve() in split_of:
                other = split_of[path.resolve()]
                raise DataError(f"{path}: given as both --{other}-file and --{split}-file; a held-out split must "
                                f"hold other rows (leave out --{split}-file to carve it from train)")
            split_of[path.resolve()] = split
        place: dict[str, str] = {}  # id -> "file:line (split)" of its first row
        for split, path in given.items():
            here: dict[str, str] = {}
            self._examples(path, here)
            for rid, where in here.items():
                if rid in place:
                    raise DataError(f"{where}: field {self.id_column!r}: id {rid!r} is also at {place[rid]}; "
                                    f"an example in two splits leaks held-out data (remove it from one)")
            place.update({rid: f"{where} ({split})" for rid, where in here.items()})

    def _examples(self, path: Path, places: dict | None = None) -> list[Example]:
        """The file's examples; `places` (when given) gets where each id read from the id column is."""
        records = sources.read_table(path)
        if not records:
            raise DataError(f"{path}: no rows")
        self._columns[str(path)] = sorted({str(k) for _, rec in records for k in rec})
        out, seen = [], set()
        for lineno, rec in records:
            where = f"{path}:{lineno}" if not path.is_dir() else f"{path} row {lineno}"
            text = _text(rec, self.input_column, where, required=True)
            label = _text(rec, self.label_column, where, required=True)
            rationale = _text(rec, self.rationale_column, where, False) if self.rationale_column else None
            llm_label = _text(rec, self.teacher_label_column, where, False) if self.teacher_label_column else None
            rid = _text(rec, self.id_column, where, False) if self.id_column else None
            if rid is not None and places is not None:  # made-up ids (file stem, line) are no evidence of a repeat
                places[rid] = where
            rid = rid or f"{path.stem}-{lineno}"
            if rid in seen:
                raise DataError(f"{where}: field {self.id_column!r}: duplicate id {rid!r}")
            seen.add(rid)
            # a rationale written for the gold label stands in for the teacher's answer when no
            # separate teacher label column is given
            if rationale is not None and llm_label is None and not self.teacher_label_column:
                llm_label = label
            out.append(Example(id=rid, input=text, label=label, llm_label=llm_label, llm_rationale=rationale))
        return out

    def rationale_origin(self, data_dir=None) -> str:
        train = self.files["train"]
        if not self.rationale_column:
            return f"no rationale column is set for {train} (--rationale-column)"
        columns = self._columns.get(str(Path(train)))
        if columns is not None and self.rationale_column not in columns:
            return (f"{train} has no column {self.rationale_column!r} (its columns: {', '.join(columns)}); "
                    "name the right one with --rationale-column, or pass rationales=FILE from `dss extract`")
        return f"column {self.rationale_column!r} of {train} is empty in every train row"

    def parse_completion(self, text: str, example=None) -> Parsed:
        from dss.tasks.generic import parse_generic
        return parse_generic(text)
