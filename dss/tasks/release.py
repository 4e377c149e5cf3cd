"""Shared loading for the four benchmarks: release-layout folder first, then the hub."""
from __future__ import annotations

from dss.core.errors import DataError
from dss.tasks import sources
from dss.tasks.base import Example, Task, attach_completions, carve_split


class ReleaseTask(Task):
    """A benchmark stored in the release layout; subclasses say how a row becomes an Example."""

    hub: dict[str, tuple[str, str | None, str]] = {}  # our split -> (path, name, hub split)
    carve_valid: bool = False    # no validation split upstream: carve one out of train (seed 0, 10 %)

    def row_to_example(self, row: dict, split: str, index: int) -> Example:
        raise NotImplementedError

    def source_split(self, split: str) -> str:
        """The file a split is read from (a carved valid split comes from train)."""
        return "train" if (self.carve_valid and split in ("train", "valid")) else split

    def released_completions(self, split: str, data_dir=None) -> dict[str, str]:
        """{example id: the release's raw teacher completion} for a split, aligned through its source file."""
        data_dir = sources.resolve_data_dir(data_dir)
        source = self.source_split(split)
        completions = sources.read_release_completions(data_dir, self.name, source)
        if completions is None:
            raise DataError(f"no released completions {self.name}/llm/{source}_CoT_*.json under {data_dir}")
        examples = self._load_source_split(source, data_dir)
        return {ex.id: text for ex, text in zip(examples, completions, strict=True)}

    def teacher_completions(self, split: str, data_dir=None) -> dict[str, str]:
        return self.released_completions(split, data_dir)

    def reference_train(self, data_dir=None) -> tuple[list[Example], bool]:
        if not self.carve_valid:
            return self.load("train", data_dir), False
        return self._load_source_split("train", sources.resolve_data_dir(data_dir)), True

    def rationale_origin(self, data_dir=None) -> str:
        data_dir = sources.resolve_data_dir(data_dir)
        source = self.source_split("train")
        if data_dir is None or not sources.completion_files(data_dir, self.name, source):
            return (f"no released teacher completions {self.name}/llm/{source}_CoT_*.json under data dir "
                    f"{data_dir}; pass rationales=FILE from `dss extract`")
        return f"the released completions {self.name}/llm/{source}_CoT_*.json under {data_dir} parse for none"

    def load(self, split: str, data_dir=None) -> list[Example]:
        self.check_split(split)
        source_split = self.source_split(split)
        examples = self._load_source_split(source_split, sources.resolve_data_dir(data_dir))
        if source_split != split or (self.carve_valid and split == "train"):
            train_idx, valid_idx = carve_split(len(examples))
            examples = [examples[i] for i in (train_idx if split == "train" else valid_idx)]
        return examples

    def _load_source_split(self, split: str, data_dir) -> list[Example]:
        rows = sources.read_release_rows(data_dir, self.name, split)
        where = str(sources.split_file(data_dir, self.name, split)) if data_dir else f"hub:{self.name}/{split}"
        if rows is None:
            if split not in self.hub:
                raise DataError(f"task {self.name!r} split {split!r}: no file "
                                f"{self.name}/{self.name}_{split}.json under data dir {data_dir} and no hub source")
            rows = sources.load_hub(*self.hub[split], task=self.name, want=split)
        examples = []
        for i, row in enumerate(rows):
            try:
                examples.append(self.row_to_example(row, split, i))
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{where}:{i + 1}: bad row for task {self.name}: {type(e).__name__}: {e}") from None
        completions = sources.read_release_completions(data_dir, self.name, split)
        return attach_completions(examples, completions, self, f"{data_dir}/{self.name}/llm/{split}_CoT_*.json")
