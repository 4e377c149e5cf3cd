"""Files that survive kills and name their bad lines: the one atomic write (temp file unique to the process,
fsync, rename, fsync of the folder), JSON reads that tell "absent or half-written" from content, and JSON
lines read with their line numbers.

    atomic_write(path, text_or_bytes); atomic_write_json(path, obj)
    with atomic_path(path) as tmp: torch.save(obj, tmp)      # anything that writes a file by name
    with atomic_dir(folder) as tmp: model.save_pretrained(tmp) # a folder: the old one or the new one, whole
    with disk_space(path, advice): ...                          # a full disk named as such, not torch's words
    read_json(path) -> obj | None;  read_jsonl_numbered(path) -> [(line, row)]
"""
from __future__ import annotations

import errno
import json
import os
import shutil
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


@contextmanager
def atomic_dir(path):
    """A temporary folder beside `path` that replaces it when the block ends without error: a kill or a full
    disk mid-save leaves the previous folder whole (after a kill between the two renames, `path` is missing
    and the previous folder is at .<name>.old)."""
    path = Path(path)
    tmp, old = path.with_name(f".{path.name}.{os.getpid()}.tmp"), path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
_TORCH_SHORT_WRITE = ("inline_container.cc", "file write failed")  # torch.save's words for a write cut short


def _free_bytes(path: Path) -> tuple[Path, int]:
    """(mount point holding path, bytes free there)."""
    where = Path(path).resolve()
    while not where.exists():
        where = where.parent
    mount = where
    while not os.path.ismount(mount):
        mount = mount.parent
    return mount, shutil.disk_usage(where).free


def no_space_message(error: BaseException, path) -> str | None:
    """What to tell a user when `error`, raised while writing under `path`, means the disk is full (errno
    ENOSPC or EDQUOT anywhere in its chain, or torch's short-write error with little space left); else None."""
    mount, free = _free_bytes(path)
    seen = error
    while seen is not None:
        text = str(seen)
        full = (isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT)) or \
            any(t in text for t in _FULL_TEXT) or (any(t in text for t in _TORCH_SHORT_WRITE) and free < 64 << 20)
        if full:
            return f"no space left on {mount} (writing under {path}; {free / 2**20:.1f} MiB free)"
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def disk_space(path, advice: str = ""):
    """Turn a full disk met while writing under `path` into one DataError naming the disk (torch says only
    `[enforce fail at inline_container.cc:672]`); other errors pass unchanged."""
    try:
        yield
    except Exception as e:
        message = no_space_message(e, path)
        if message is None:
            raise
        raise DataError(message + (f"; {advice}" if advice else "")) from None


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
