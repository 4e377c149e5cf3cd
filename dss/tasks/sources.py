"""The one seam through which data comes from disk or the Hugging Face hub.

Disk layout is the original Distilling Step-by-Step release (`datasets.zip`):
    {data_dir}/{task}/{task}_{split}.json        JSON lines, one row a line
    {data_dir}/{task}/llm/{split}_CoT_{k}.json   JSON lists of teacher completions, aligned by index
Tests swap tiny data in by pointing `data_dir` (or DSS_DATA_DIR) at a folder of that shape.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

from dss.core.errors import DataError
from dss.core.io import read_jsonl, read_jsonl_numbered, read_text

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
RELEASE_URL = ("https://github.com/google-research/distilling-step-by-step/raw/main/datasets.zip")


def resolve_data_dir(data_dir=None) -> Path | None:
    """--data-dir, else $DSS_DATA_DIR, else the repo's data/ folder (where `dss data download` unpacks)."""
    chosen = data_dir or os.environ.get("DSS_DATA_DIR")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise DataError(f"data dir {path} does not exist (from {'--data-dir' if data_dir else 'DSS_DATA_DIR'})")
        return path
    return REPO_DATA if REPO_DATA.is_dir() else None


def split_file(data_dir: Path, task: str, split: str) -> Path:
    return data_dir / task / f"{task}_{split}.json"


def read_table(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) pairs from .jsonl/.json lines, .csv, or a `save_to_disk` folder."""
    if path.is_dir():
        return read_hf_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return read_csv_numbered(path)
    return read_jsonl_numbered(path)


def read_csv_numbered(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a CSV file with a header (a byte-order mark is not part of the first name)."""
    # a field may be as long as a JSONL one: csv's default limit (131,072 characters) is below a long rationale.
    # The limit is csv's process-wide setting; 2^31 - 1 is the largest every platform's C long holds.
    csv.field_size_limit(2**31 - 1)
    text = read_text(path)
    # strict: a quote left open is an error at the end of the file, not a row that swallows every line after it
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    out, start = [], 1  # start: the first line of the row being read
    try:
        header = reader.fieldnames or []
        for i, name in enumerate(header):
            if name in header[:i]:  # DictReader would keep the last column of the name and drop the other
                raise DataError(f"{path}:{reader.line_num}: column {name!r} appears twice in the header "
                                f"(columns {header.index(name) + 1} and {i + 1})")
        start = reader.line_num + 1
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more values than the header's columns")
            out.append((reader.line_num, row))
            start = reader.line_num + 1
    except csv.Error as e:
        if str(e) == "unexpected end of data":  # the file ended inside a quoted field: name the row that opened it
            lines = io.StringIO(text, newline="").readlines()
            while start < len(lines) and not lines[start - 1].strip():  # csv skips blank lines between rows
                start += 1
            raise DataError(f"{path}:{start}: a quoted field on this row never ends (a \" without its closing "
                            "\"); the file ended inside it") from None
        raise DataError(f"{path}:{reader.line_num}: cannot read as CSV: {e}") from None
    return out


def read_hf_folder(path: Path) -> list[tuple[int, dict]]:
    try:
        import datasets
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"{path}: not a saved Hugging Face dataset ({type(e).__name__}: {e})") from None
    if isinstance(ds, datasets.DatasetDict):
        raise DataError(f"{path}: holds several splits ({', '.join(ds)}); pass one split's folder per file option")
    return [(i + 1, dict(r)) for i, r in enumerate(ds)]


def read_release_rows(data_dir: Path | None, task: str, split: str) -> list[dict] | None:
    """The split's rows from a release-layout folder, or None if the file is not there."""
    if data_dir is None:
        return None
    path = split_file(data_dir, task, split)
    return read_jsonl(path) if path.is_file() else None


def completion_files(data_dir: Path, task: str, split: str) -> list[Path]:
    files = list((data_dir / task / "llm").glob(f"{split}_CoT_*.json"))
    batch = re.compile(rf"{re.escape(split)}_CoT_(\d+)\.json$")
    return sorted((f for f in files if batch.search(f.name)), key=lambda f: int(batch.search(f.name).group(1)))


def read_release_completions(data_dir: Path | None, task: str, split: str) -> list[str] | None:
    """Teacher completions for a split, batches concatenated in order; None when there are none."""
    if data_dir is None:
        return None
    files = completion_files(data_dir, task, split)
    if not files:
        return None
    out: list[str] = []
    for f in files:
        try:
            batch = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"{f}: cannot read teacher completions: {e}") from None
        if not isinstance(batch, list) or not all(isinstance(c, str) for c in batch):
            raise DataError(f"{f}: expected a JSON list of strings")
        out.extend(batch)
    return out


def load_hub(path: str, name: str | None, split: str, task: str, want: str) -> list[dict]:
    """Rows from `datasets.load_dataset`; offline, a message saying which files to put where."""
    try:
        import datasets
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as e:  # offline: ConnectionError, HfHubHTTPError, ... — all mean the same to a user
        raise DataError(
            f"task {task!r} split {want!r}: not found on disk and the Hugging Face hub failed "
            f"(load_dataset({path!r}, {name!r}, split={split!r}): {type(e).__name__}: {str(e)[:200]}).\n"
            f"Offline, put {task}/{task}_{want}.json (JSON lines) and optionally {task}/llm/{want}_CoT_*.json "
            f"under a data dir and pass --data-dir DIR or set DSS_DATA_DIR; `dss data download` fetches the "
            f"original release into {REPO_DATA}.") from None
    return [dict(r) for r in ds]


def download_release(dest: Path = REPO_DATA, source: str = RELEASE_URL) -> list[str]:
    """Fetch (URL) or copy (local path) the release `datasets.zip` and unpack it into dest.

    The archive holds a top folder `datasets/{task}/...`; tasks land directly under dest.
    Returns the task folders written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "datasets.zip"
    if Path(source).expanduser().is_file():
        shutil.copyfile(Path(source).expanduser(), archive)
    else:
        import urllib.request
        try:
            with urllib.request.urlopen(source, timeout=60) as r, open(archive, "wb") as out:
                shutil.copyfileobj(r, out)
        except OSError as e:
            raise DataError(f"cannot download {source}: {e}. Offline, download datasets.zip elsewhere and "
                            f"run `dss data download --archive PATH`.") from None
    try:
        with zipfile.ZipFile(archive) as z:
            written = set()
            for info in z.infolist():
                parts = Path(info.filename).parts
                if info.is_dir() or not parts or parts[0] == "__MACOSX":
                    continue
                parts = parts[1:] if parts[0] == "datasets" else parts
                if not parts or ".." in parts:
                    continue  # never write outside dest
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.add(parts[0])
    except zipfile.BadZipFile:
        raise DataError(f"{archive}: not a zip archive") from None
    finally:
        archive.unlink(missing_ok=True)
    return sorted(written)
