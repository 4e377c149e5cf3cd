"""`dss score --against`: how often two predictions files of the same rows give the same answer."""
from __future__ import annotations

import json

import pytest

from dss.commands.cli import main
from dss.core.errors import DataError
from dss.tasks import get_task
from dss.tasks.scoring import agreement


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_agreement_pairs_rows_by_id_and_compares_answers_as_accuracy_does(tmp_path, capsys):
    a = write(tmp_path / "a.jsonl", [{"id": "1", "prediction": "yes", "label": "yes"},
                                     {"id": "2", "prediction": "no .", "label": "no"},
                                     {"id": "3", "prediction": "yes", "label": "no"},
                                     {"id": "4", "prediction": "maybe", "label": "no"}])
    b = write(tmp_path / "b.jsonl", [{"id": "4", "prediction": "maybe", "label": "no"},  # another order
                                     {"id": "3", "prediction": "no", "label": "no"},
                                     {"id": "2", "prediction": "no", "label": "no"},
                                     {"id": "1", "prediction": "yes", "label": "yes"}])
    got = agreement(get_task("demo"), a, b)
    # 1 same, 2 the same answer in other words, 3 differs, 4 unreadable in both but the same text
    assert got == {"agreement": 0.75, "same_text": 0.5, "n": 4}
    assert main(["score", "--task", "demo", "--predictions", str(a), "--against", str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"accuracy": 0.5, "n": 4, "agreement": 0.75, "same_text": 0.5}


def test_rows_that_do_not_pair_are_named(tmp_path):
    a = write(tmp_path / "a.jsonl", [{"id": "1", "prediction": "yes"}, {"id": "2", "prediction": "no"}])
    b = write(tmp_path / "b.jsonl", [{"id": "1", "prediction": "yes"}, {"id": "9", "prediction": "no"}])
    with pytest.raises(DataError, match=r"a.jsonl:2: id '2' has no row in .*b.jsonl"):
        agreement(get_task("demo"), a, b)
    c = write(tmp_path / "c.jsonl", [{"prediction": "yes"}])
    with pytest.raises(DataError, match="has 2 rows and .* 1, without ids"):
        agreement(get_task("demo"), a, c)
    d = write(tmp_path / "d.jsonl", [{"id": "1", "answer": "yes"}])
    with pytest.raises(DataError, match=r"d.jsonl:1: field 'prediction' is missing"):
        agreement(get_task("demo"), d, a)
