"""Custom datasets: JSONL, CSV and saved HF folders; bad rows name file, line and field."""
import json
import subprocess
import sys

import pytest

from dss.core.errors import DataError
from dss.tasks import get_task


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def rows(n):
    return [{"input": f"question {i}", "label": "yes" if i % 2 else "no", "rationale": f"because {i}"}
            for i in range(n)]


def test_jsonl_with_deterministic_splits(tmp_path):
    f = write_jsonl(tmp_path / "my.jsonl", rows(50))
    task = get_task("custom", train_file=str(f))
    splits = {s: task.load(s) for s in ("train", "valid", "test")}
    assert [len(v) for v in splits.values()] == [40, 5, 5]
    ids = [e.id for v in splits.values() for e in v]
    assert len(set(ids)) == 50  # a partition: nothing dropped, nothing twice
    assert [e.id for e in get_task("custom", train_file=str(f)).load("test")] == [e.id for e in splits["test"]]
    ex = splits["train"][0]
    assert ex.llm_rationale.startswith("because") and ex.llm_label == ex.label


def test_explicit_valid_and_test_files_and_columns(tmp_path):
    tr = write_jsonl(tmp_path / "tr.jsonl", [{"q": "a b", "y": 1, "id": "x1"}, {"q": "c", "y": 2, "id": "x2"}])
    te = write_jsonl(tmp_path / "te.jsonl", [{"q": "d", "y": 3}])
    task = get_task("custom", train_file=str(tr), valid_file=str(te), test_file=str(te),
                    input_column="q", label_column="y")
    train = task.load("train")
    assert [(e.id, e.input, e.label, e.llm_rationale) for e in train] == [("x1", "a b", "1", None),
                                                                          ("x2", "c", "2", None)]
    assert task.load("test")[0].id == "te-1"


def test_csv(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('input,label,rationale\n"hello, world",pos,it greets\nbye,neg,\n')
    exs = get_task("custom", train_file=str(f), test_file=str(f), valid_file=str(f)).load("train")
    assert [(e.input, e.label, e.llm_rationale) for e in exs] == [("hello, world", "pos", "it greets"),
                                                                  ("bye", "neg", None)]


def test_csv_bad_row_names_line(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("input,label\nfine,pos\n,neg\n")
    with pytest.raises(DataError, match=r"d\.csv:3: field 'input'"):
        get_task("custom", train_file=str(f)).load("train")


@pytest.mark.parametrize("bad,pattern", [
    ({"label": "yes"}, "field 'input' is missing"),
    ({"input": "", "label": "yes"}, "field 'input' is missing or empty"),
    ({"input": "q", "label": ["yes"]}, "field 'label' must be text"),
    ({"input": "q", "label": "y", "rationale": {"a": 1}}, "field 'rationale' must be text"),
    ('{"input": "q", "label": ', "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_line_3_names_file_line_and_field(tmp_path, bad, pattern):
    data = rows(5)
    data[2] = bad
    f = write_jsonl(tmp_path / "bad.jsonl", data)
    with pytest.raises(DataError, match=rf"bad\.jsonl:3: .*{pattern}"):
        get_task("custom", train_file=str(f)).load("train")


def test_unreadable_file_and_duplicate_ids(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        get_task("custom", train_file=str(tmp_path / "missing.jsonl")).load("train")
    f = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "input": "x", "label": "y"}] * 2)
    with pytest.raises(DataError, match=r"dup\.jsonl:2: field 'id': duplicate id 'a'"):
        get_task("custom", train_file=str(f)).load("train")


def test_saved_hf_dataset_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows(10)).save_to_disk(str(tmp_path / "hf"))
    exs = get_task("custom", train_file=str(tmp_path / "hf"), valid_file=str(tmp_path / "hf"),
                   test_file=str(tmp_path / "hf")).load("train")
    assert len(exs) == 10 and exs[3].input == "question 3"


def test_cli_reports_bad_line_cleanly(tmp_path):
    data = rows(5)
    data[2] = {"input": "q"}
    f = write_jsonl(tmp_path / "bad.jsonl", data)
    out = subprocess.run([sys.executable, "-m", "dss", "data", "show", "--task", "custom", "--train-file", str(f),
                          "--split", "train"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"{f}:3: field 'label' is missing or empty" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path):
    """Excel and Notepad write UTF-8 with a BOM: the CSV's first column must still be `id`, the JSONL valid."""
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes("\ufeffid,input,label\nq1,hello,pos\nq2,bye,neg\n".encode())
    exs = get_task("custom", train_file=str(csv_file), valid_file=str(csv_file), test_file=str(csv_file)).load("train")
    assert [e.id for e in exs] == ["q1", "q2"]
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows(3)).encode())
    assert len(get_task("custom", train_file=str(jsonl), valid_file=str(jsonl), test_file=str(jsonl))
               .load("train")) == 3


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_invalid_utf8_names_the_line(tmp_path, suffix):
    f = tmp_path / f"latin1.{suffix}"
    good = [json.dumps(r) for r in rows(4)] if suffix == "jsonl" else ["input,label", "a,b", "c,d", "e,f"]
    lines = [x.encode() for x in good]
    lines[2] = lines[2].replace(b"c" if suffix == "csv" else b"question", "caf\u00e9".encode("latin-1"))
    f.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"latin1\.{suffix}:3: not UTF-8 text \(byte 0xe9"):
        get_task("custom", train_file=str(f)).load("train")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_nan_label_is_not_the_label_nan(tmp_path, value):
    data = [json.dumps(r) for r in rows(5)]
    data[2] = '{"input": "q", "label": %s}' % value
    f = write_jsonl(tmp_path / "nan.jsonl", data)
    with pytest.raises(DataError, match=r"nan\.jsonl:3: field 'label' must be text"):
        get_task("custom", train_file=str(f)).load("train")


def test_a_small_closed_label_set_is_inferred_like_a_benchmark_has_one(tmp_path):
    f = write_jsonl(tmp_path / "yn.jsonl", rows(50))
    task = get_task("custom", train_file=str(f))
    assert task.labels == ("no", "yes") and task.chance() == 0.5
    opened = write_jsonl(tmp_path / "open.jsonl", [{"input": f"q{i}", "label": f"answer {i}"} for i in range(50)])
    assert get_task("custom", train_file=str(opened)).chance() is None  # 40 train labels, all distinct
    assert get_task("custom", train_file=str(opened), labels=["a", "b", "c"]).chance() == pytest.approx(1 / 3)
    assert get_task("custom").labels is None  # no file: nothing to infer (as `dss tasks` lists it)
