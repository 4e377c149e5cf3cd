"""Task registry, parsers and loaders, on tiny fixtures and (when present) the real release data."""
import json
import subprocess
import sys

import pytest

from dss.core.errors import DataError
from dss.tasks import get_task, task_names
from dss.tasks.base import Parsed, carve_split

PAPER_TEACHER = {"anli1": 65.6, "esnli": 73.0, "cqa": 77.2}


def test_registry_has_the_benchmarks():
    assert {"anli1", "esnli", "cqa", "svamp", "custom", "demo"} <= set(task_names())
    with pytest.raises(DataError, match="unknown task"):
        get_task("nope")


def test_carve_split_matches_paper_sizes_and_is_deterministic():
    tr, va = carve_split(9741)
    assert (len(tr), len(va)) == (8766, 975)
    assert not set(tr) & set(va)
    assert carve_split(800) == carve_split(800)
    assert tuple(map(len, carve_split(800))) == (720, 80)


@pytest.mark.parametrize("text,label,rationale", [
    ("The premise says X. So the answer is contradiction.\n\nPremise: A\nHypothesis: B\nAnswer: Y. So the answer is "
     "entailment.", "contradiction", "The premise says X."),
    ("Nothing decides it. So the answer is neutral.", "neutral", "Nothing decides it."),
    # no answer: the text is no rationale (it used to be trained on whole)
    ("It rambles without an answer.\n\nPremise: So the answer is entailment.", None, None),
])
def test_anli_parser(text, label, rationale):
    p = get_task("anli1").parse_completion(text)
    assert (p.label, p.rationale) == (label, rationale)


def test_esnli_parser_copes_with_continuation_and_cut_labels():
    t = get_task("esnli")
    p = t.parse_completion("A man is a person.\nAnswer: entailment\n\nPremise: x\nHypothesis: y\nReasonings: z")
    assert (p.label, p.rationale) == ("entailment", "A man is a person.")
    assert t.parse_completion("Cut here.\nAnswer: contrad").label == "contradiction"
    assert t.parse_completion("Cut here.\nAnswer: ne").label is None  # too short to be sure


def test_cqa_parser_and_svamp_parser():
    c = get_task("cqa").parse_completion("Bums live near trains. So the answer is (c) train station.\n\nQ: x?")
    assert (c.label, c.rationale) == ("train station", "Bums live near trains.")
    s = get_task("svamp").parse_completion("84 / 2 = 42. The answer is (84 / 2).\n\nQ: There are 15 trees.")
    assert (s.label, s.rationale) == ("(84 / 2)", "84 / 2 = 42.")
    assert get_task("svamp").parse_completion("No answer here.\n\nQ: more") == Parsed(None, None)
    loop = "Each has 3. Each has 3. Each has 3. Each has 3." * 20
    assert get_task("svamp").parse_completion(loop) == Parsed(None, None)
    assert get_task("cqa").parse_completion("Q: Where is a fish?\nAnswer Choices: (a) sea") == Parsed(None, None)


def test_an_unparsed_teacher_answer_gives_no_rationale_row(shared_data):
    """13 SVAMP completions have no answer (repetition loops, an echoed next question): none becomes a
    rationale row; their label rows stay (gold labels) and the counts say so."""
    from dss.student import batching as D
    from dss.student.config import TrainConfig
    t = get_task("svamp")
    unparsed = [e for s in ("train", "valid", "test") for e in t.load(s, shared_data)
                if e.meta["teacher"] == "unparsed"]
    assert len(unparsed) == 13 and all(e.llm_rationale is None for e in unparsed)
    train = t.load("train", shared_data)
    items, stats = D.training_items(train, TrainConfig(method="dss"))
    assert stats["teacher_unparsed"] == 10 and stats["missing_rationale"] == 10 and len(items) == 720
    assert sum(len(it) == 2 for it in items) == 710


def test_tiny_cqa_loads_with_carved_valid_and_teacher_outputs(tiny_cqa_dir):
    task = get_task("cqa")
    train, valid, test = (task.load(s, tiny_cqa_dir) for s in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (36, 4, 10)
    assert not {e.id for e in train} & {e.id for e in valid}
    ex = test[3]
    assert ex.input.splitlines()[1:3] == ["Answer Choices:", "(a) thing3a"]
    assert ex.llm_label == ex.label == "idea3" and ex.llm_rationale == "Item 3 is found at idea3."
    assert [e.id for e in task.load("train", tiny_cqa_dir)] == [e.id for e in train]  # stable


def test_misaligned_completions_are_an_error(tiny_cqa_dir):
    f = tiny_cqa_dir / "cqa" / "llm" / "test_CoT_0.json"
    f.write_text(json.dumps(json.loads(f.read_text())[:-1]))
    with pytest.raises(DataError, match="aligned by index"):
        get_task("cqa").load("test", tiny_cqa_dir)


def test_bad_release_row_names_file_and_line(tiny_cqa_dir):
    path = tiny_cqa_dir / "cqa" / "cqa_test.json"
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["answer"] = "not a choice"
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"cqa_test\.json:3: .*'answer'"):
        get_task("cqa").load("test", tiny_cqa_dir)


def test_missing_split_offline_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (tmp_path / "anli1").mkdir()
    with pytest.raises(DataError, match=r"anli1/anli1_train\.json.*--data-dir"):
        get_task("anli1").load("train", tmp_path)


# ---- the real release data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("task,sizes", [
    ("anli1", {"valid": 1000, "test": 1000}), ("esnli", {"train": 10000, "valid": 9842, "test": 9824}),
    ("cqa", {"train": 8766, "valid": 975, "test": 1221}), ("svamp", {"train": 720, "valid": 80, "test": 200}),
])
def test_release_row_counts(shared_data, task, sizes):
    t = get_task(task)
    for split, n in sizes.items():
        examples = t.load(split, shared_data)
        assert len(examples) == n
        assert len({e.id for e in examples}) == n  # ids are unique


@pytest.mark.parametrize("task", sorted(PAPER_TEACHER))
def test_teacher_accuracy_reproduced(shared_data, task):
    t = get_task(task)
    test = t.load("test", shared_data)
    acc = 100 * t.accuracy([e.llm_label for e in test], [e.label for e in test])
    assert abs(acc - PAPER_TEACHER[task]) <= 0.3, acc


def test_svamp_teacher_accuracy_reading_whole_answers(shared_data):
    # the release README's 74.0 % counts '(12 - 2) - 7' (written outside the '(<expr>)' format) as wrong;
    # read whole, 7 such answers are right, so the teacher scores 155/200
    t = get_task("svamp")
    test = t.load("test", shared_data)
    assert sum(t.is_correct(e.llm_label, e.label) for e in test) == 155
    assert sum(e.llm_label is None for e in test) == 2


def test_data_stats_json_on_release(shared_data):
    out = subprocess.run([sys.executable, "-m", "dss", "data", "stats", "--task", "cqa", "--data-dir",
                          str(shared_data), "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["task"] == "cqa"
    assert {k: v["rows"] for k, v in stats["splits"].items()} == {"train": 8766, "valid": 975, "test": 1221}
    assert stats["splits"]["test"]["teacher_accuracy"] == pytest.approx(0.772, abs=0.003)


def test_the_registry_names_every_task_class():
    from dss.tasks import TASKS, task_class
    for name in TASKS:
        assert task_class(name).name == name
    with pytest.raises(DataError, match="unknown task 'nope'; known tasks: anli1, cqa"):
        get_task("nope")


REFERENCE_FIRST_ROWS = {  # run.py / data_utils.py of google-research/distilling-step-by-step, applied by hand
    ("anli1", "valid"): "Linguistics is the scientific study of language, and involves an analysis of language "
    "form, language meaning, and language in context. The earliest activities in the documentation and description "
    "of language have been attributed to the 4th century BCE Indian grammarian P\u0101\u1e47ini, who wrote a formal "
    "description of the Sanskrit language in his \"A\u1e63\u1e6d\u0101dhy\u0101y\u012b \".</s>Form and meaning "
    "are the only aspects of language linguistics is concerned with.",
    ("anli1", "test"): "Ernest Jones is a British jeweller and watchmaker. Established in 1949, its first store was "
    "opened in Oxford Street, London. Ernest Jones specialises in diamonds and watches, stocking brands such as Gucci "
    "and Emporio Armani. Ernest Jones is part of the Signet Jewelers group.</s>The first Ernest Jones store was "
    "opened on the continent of Europe.",
    ("esnli", "train"): "A person on a horse jumps over a broken down airplane.</s>A person is training his horse "
    "for a competition.",
    ("esnli", "test"): "This church choir sings to the masses as they sing joyous songs from the book at a church."
    "</s>The church has cracks in the ceiling.",
    # the first row of train after the reference's train_test_split(test_size=0.1, seed=0) carve
    ("cqa", "train"): "A kid is studying new words at home in the kitchen, where could a dictionary be?\nAnswer "
    "Choices:\n(a) library\n(b) table\n(c) bookstore\n(d) shelf\n(e) classroom",
    ("cqa", "test"): "A beaver is know for building prowess, their supplies come from where?\nAnswer Choices:\n"
    "(a) british columbia\n(b) body of water\n(c) wooded area\n(d) pay debts\n(e) zoo",
    ("svamp", "train"): "The Ferris wheel in paradise park has 18 seats. Each seat can hold 15 people. If 10 seats "
    "are broken\nHow many people can ride the Ferris wheel at the same time?",
    ("svamp", "test"): "Paige was helping her mom plant flowers and together they planted some seeds. They put 10 "
    "seeds in each flower bed. If there are 45 flowerbeds\nHow many seeds did they plant?",
}


@pytest.mark.parametrize("task,split", sorted(REFERENCE_FIRST_ROWS))
def test_reference_input_format_reproduces_the_reference_strings(shared_data, task, split):
    t = get_task(task)
    assert t.reference_input(t.load(split, shared_data)[0], "</s>") == REFERENCE_FIRST_ROWS[task, split]


def test_reference_format_reaches_the_training_rows(shared_data):
    from dss.student.config import TrainConfig
    from dss.student.data import load_data
    cfg = TrainConfig(task="esnli", data_dir=str(shared_data), input_format="reference", label_prefix="predict: ",
                      rationale_prefix="explain: ", max_eval_examples=2)
    data = load_data(cfg)
    items, valid = data.items, data.valid
    first = get_task("esnli").load("train", shared_data)[0]
    row = next(it for it in items if it[0].source.endswith(first.meta["hypothesis"]))
    assert row[0].source == "predict: " + REFERENCE_FIRST_ROWS["esnli", "train"]
    assert row[1].source == "explain: " + REFERENCE_FIRST_ROWS["esnli", "train"]
    assert "</s>" in valid[0].input and "Premise:" not in valid[0].input
