"""Read a W&B offline run file (run-*.wandb) without the network: the records W&B would sync.

The file is a LevelDB-style log (what wandb's datastore writes): a 7-byte header (":W&B", magic 0xBEE1,
version 0), then 32 KiB blocks of records, each a 7-byte header (crc32, little-endian length, type: 1 full,
2 first, 3 middle, 4 last) and a piece of one serialized `wandb_internal_pb2.Record`.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024


def records(path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    out, pos, parts = [], 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        parts += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(parts)
            out.append(rec)
            parts = b""
    return out


def history_and_config(path) -> tuple[list[dict], dict]:
    """([{metric: value, ...} per logged step], {config key: value})."""
    rows, config = [], {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in rec.config.update})
    return rows, config
