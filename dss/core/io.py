"""Files that survive kills and name their bad lines: the one atomic write (temp file unique to the process,
fsync, rename, fsync of the folder), JSON reads that tell "absent or half-written" from content, and JSON
lines read with their line numbers.

    atomic_write(path, text_or_bytes); atomic_write_json(path, obj)
    with atomic_path(path) as tmp: torch.save(obj, tmp)      # anything that writes a file by name
    read_json(path) -> obj | None;  read_jsonl_numbered(path) -> [(line, row)]
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from dss.core.errors import DataError


@contextmanager
def atomic_path(path):
    """A temporary path beside `path`, renamed onto it when the block ends without error: a reader, a resumed
    run or a second process never sees half a file, and after a crash the file is either old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # the rename itself is durable once the folder is synced (not possible on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write(path, data: str | bytes) -> None:
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def atomic_write_json(path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def read_json(path):
    """A JSON file's content, or None when it is absent or half-written."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def append_line(path, text: str) -> None:
    """One whole line in one write, flushed: a kill leaves at most one torn last line."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text.rstrip("\n") + "\n")


def read_text(path) -> str:
    """A file's text as UTF-8, with or without a byte-order mark; bad bytes are an error naming the line."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}: {e.reason}); save the "
                        "file as UTF-8") from None


def read_jsonl_numbered(path) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a JSON-lines file; a bad line is an error naming file and line."""
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append((lineno, row))
    return rows


def read_jsonl(path) -> list[dict]:
    return [row for _, row in read_jsonl_numbered(path)]
