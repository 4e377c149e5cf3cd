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


def whole(path):
    """A custom task whose train split is every row of the file, in order (valid and test have files of their
    own: one file for two splits is refused)."""
    held = {s: write_jsonl(path.parent / f"held-{s}.jsonl", [{"input": f"{s} row", "label": "x"}])
            for s in ("valid", "test")}
    return get_task("custom", train_file=str(path), valid_file=str(held["valid"]), test_file=str(held["test"]))


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
    va = write_jsonl(tmp_path / "va.jsonl", [{"q": "e", "y": 3}])
    task = get_task("custom", train_file=str(tr), valid_file=str(va), test_file=str(te),
                    input_column="q", label_column="y")
    train = task.load("train")
    assert [(e.id, e.input, e.label, e.llm_rationale) for e in train] == [("x1", "a b", "1", None),
                                                                          ("x2", "c", "2", None)]
    assert task.load("test")[0].id == "te-1" and task.load("valid")[0].id == "va-1"


def test_csv(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('input,label,rationale\n"hello, world",pos,it greets\nbye,neg,\n')
    exs = whole(f).load("train")
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
    exs = whole(tmp_path / "hf").load("train")
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
    exs = whole(csv_file).load("train")
    assert [e.id for e in exs] == ["q1", "q2"]
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows(3)).encode())
    assert len(whole(jsonl).load("train")) == 3


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
    assert task.label_set == ("no", "yes") and task.chance() == 0.5
    opened = write_jsonl(tmp_path / "open.jsonl", [{"input": f"q{i}", "label": f"answer {i}"} for i in range(50)])
    assert get_task("custom", train_file=str(opened)).chance() is None  # 40 train labels, all distinct
    assert get_task("custom", train_file=str(opened), labels=["a", "b", "c"]).chance() == pytest.approx(1 / 3)
    assert get_task("custom").label_set is None  # no file: nothing to infer (as `dss tasks` lists it)


def test_an_id_in_two_files_is_refused_naming_both_rows(tmp_path):
    tr = write_jsonl(tmp_path / "tr.jsonl", [{"id": f"r{i}", "input": f"q{i}", "label": "y"} for i in range(4)])
    te = write_jsonl(tmp_path / "te.jsonl", [{"id": "t0", "input": "a", "label": "y"},
                                             {"id": "r2", "input": "b", "label": "y"}])
    va = write_jsonl(tmp_path / "va.jsonl", [{"id": "t0", "input": "c", "label": "y"}])
    for split in ("train", "test"):  # whichever split is asked for first
        with pytest.raises(DataError, match=r"te\.jsonl:2: field 'id': id 'r2' is also at .*tr\.jsonl:3 \(train\)"):
            get_task("custom", train_file=str(tr), test_file=str(te)).load(split)
    with pytest.raises(DataError, match=r"te\.jsonl:1: field 'id': id 't0' is also at .*va\.jsonl:1 \(valid\)"):
        get_task("custom", train_file=str(tr), valid_file=str(va), test_file=str(te)).load("valid")
    with pytest.raises(DataError, match=r"tr\.jsonl: given as both --train-file and --test-file"):
        get_task("custom", train_file=str(tr), test_file=str(tmp_path / "." / "tr.jsonl")).load("train")
    # ids made up from file and line are not evidence of a repeat: two files called data.jsonl are fine
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    task = get_task("custom", train_file=str(write_jsonl(tmp_path / "a" / "data.jsonl", rows(4))),
                    test_file=str(write_jsonl(tmp_path / "b" / "data.jsonl", rows(2))))
    assert [e.id for e in task.load("test")] == ["data-1", "data-2"]


def test_a_csv_header_with_a_column_twice_is_refused(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("input,label,input\nfirst,pos,second\n")
    with pytest.raises(DataError, match=r"d\.csv:1: column 'input' appears twice in the header \(columns 1 and 3\)"):
        whole(f).load("train")


@pytest.mark.parametrize("blank", ["", "\n\n"])
def test_an_unterminated_quote_names_the_row_it_starts_on(tmp_path, blank):
    f = tmp_path / "d.csv"
    after = "".join(f"row {i},pos\n" for i in range(35))  # csv reads them all looking for the closing quote
    f.write_text("input,label\nfine,pos\n" + blank + '"never closed,neg\n' + after)
    line = 3 + blank.count("\n")
    with pytest.raises(DataError, match=rf"d\.csv:{line}: a quoted field on this row never ends"):
        whole(f).load("train")


def test_a_csv_field_may_be_as_long_as_a_jsonl_one(tmp_path):
    long = "x" * 200_000
    f = tmp_path / "d.csv"
    f.write_text(f"input,label\n{long},pos\n")
    assert whole(f).load("train")[0].input == long
    assert whole(write_jsonl(tmp_path / "d.jsonl", [{"input": long, "label": "pos"}])).load("train")[0].input == long


def yes_no_maybe(tmp_path):
    """A train file of yes/no labels and a test file where a third of the labels are 'maybe'."""
    tr = write_jsonl(tmp_path / "tr.jsonl", rows(40))
    te = write_jsonl(tmp_path / "te.jsonl", [{"input": f"t{i}", "label": ["yes", "no", "maybe"][i % 3]}
                                             for i in range(9)])
    return tr, te


def test_held_out_labels_never_seen_in_train_are_warned(tmp_path):
    from dss.tasks.base import warn_unseen_labels
    tr, te = yes_no_maybe(tmp_path)
    task = get_task("custom", train_file=str(tr), test_file=str(te))
    said = []
    warn_unseen_labels(task, {s: task.load(s) for s in task.splits()}, said.append)
    assert said == ["warning: 3 of 9 test examples have a label never seen in train ('maybe'): the student never "
                    "learns such a label, and under eval_mode=score (which answers from the task's label set) "
                    "these examples can never be answered"]
    out = subprocess.run([sys.executable, "-m", "dss", "data", "stats", "--task", "custom", "--train-file", str(tr),
                          "--test-file", str(te)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.count("warning:") == 1
    assert out.stderr.startswith("dss data stats: warning: 3 of 9 test examples have a label never seen")
    # open answers (no closed label set) are new by nature: nothing to warn about
    opened = write_jsonl(tmp_path / "open.jsonl", [{"input": f"q{i}", "label": f"answer {i}"} for i in range(50)])
    said.clear()
    task = get_task("custom", train_file=str(opened))
    warn_unseen_labels(task, {s: task.load(s) for s in task.splits()}, said.append)
    assert said == []


def test_dss_train_warns_of_unseen_labels_once(tmp_path, capsys):
    from dss.commands.cli import main
    tr, te = yes_no_maybe(tmp_path)
    assert main(["train", "--task", "custom", "--train-file", str(tr), "--test-file", str(te), "--max-steps", "1",
                 "--d-model", "16", "--heads", "2", "--d-ff", "16", "--layers", "1", "--vocab-size", "64",
                 "--batch-size", "4", "--no-tensorboard", "--output-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "dss train: warning: 3 of 9 test examples have a label never" in err
