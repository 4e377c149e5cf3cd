"""Writing rationale records (their format and reading are dss.tasks.rationales): `RecordFile`, the
extractor's append-only output, and `write_records` for whole files.

Crash safety: each record is one `write()` of a whole line, flushed as it completes; a run holds a lock
file so two runs never write the same file; on open a torn last line (a kill mid-write) is cut off.
Any string a server sent can be written, a lone surrogate too (`line`). `first_model` is the model the file's
first answer reported: the teacher of this cache (dss.teacher.items.model_change).
"""
from __future__ import annotations

import json
from pathlib import Path

from dss.core import locks
from dss.core.errors import DataError
from dss.core.io import atomic_write
from dss.tasks.rationales import scan


def line(rec: dict) -> bytes:
    """One record as a UTF-8 JSON line. JSON from a server may carry a lone surrogate ("\\ud800"), which UTF-8
    cannot encode; it can only sit inside a JSON string, where its \\uXXXX escape reads back as the same string."""
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


def write_records(path, records: list[dict]) -> None:
    """Write a whole rationale file atomically."""
    atomic_write(path, b"".join(map(line, records)))


class RecordFile:
    """The append-only output: locked for the run, repaired on open, one flushed line per record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # one writer per output file
            self._lock = locks.acquire(self.path.with_name(self.path.name + ".lock"))
        except locks.Busy as e:
            raise DataError(f"{self.path}: another `dss extract` is writing this file ({e.holder})") from None
        self.records, good_len, self.torn = scan(self.path)
        if self.torn:  # a kill interrupted the last write: cut it off, it is redone
            with open(self.path, "r+b") as fh:
                fh.truncate(good_len)
        self._fh = None
        self._frozen = False
        self.first_model = _first_model(self.records)

    def rewrite(self, keep: list[dict]) -> None:
        write_records(self.path, keep)
        self.records = keep
        self.first_model = _first_model(keep)

    def freeze(self) -> None:
        """Accept no more records (threads abandoned at the end of a run must not write)."""
        self._frozen = True

    def append(self, rec: dict) -> None:
        if self._frozen:
            return
        if self._fh is None:
            self._fh = open(self.path, "ab")
        self._fh.write(line(rec))  # one write of a whole line
        self._fh.flush()
        self.records.append(rec)
        self.first_model = self.first_model or rec.get("model")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._lock.release()


def _first_model(records: list[dict]) -> str | None:
    return next((r["model"] for r in records if r.get("model")), None)
