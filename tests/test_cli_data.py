"""`dss tasks`, `dss data show|export|download` as a user runs them."""
import json
import subprocess
import sys
import zipfile

from dss.commands.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "dss", *args], capture_output=True, text=True, timeout=120)


def test_every_subcommand_has_help():
    from dss.commands.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"tasks", "data", "score"} <= set(sub.choices)
    for name in sub.choices:
        out = run(name, "--help")
        assert out.returncode == 0 and "usage: dss " + name in out.stdout, name


def test_tasks_lists_splits_labels_metric_source(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "anli1" in out and "labels: entailment, neutral, contradiction" in out
    assert "metric: equation" in out  # svamp


def test_show_and_export_normalized_examples(tiny_cqa_dir, tmp_path, capsys):
    assert main(["data", "show", "--task", "cqa", "--split", "test", "--n", "2", "--data-dir", str(tiny_cqa_dir)]) == 0
    shown = capsys.readouterr().out
    assert shown.count('"llm_rationale"') == 2
    out = tmp_path / "x" / "test.jsonl"
    assert main(["data", "export", "--task", "cqa", "--split", "test", "--data-dir", str(tiny_cqa_dir),
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10
    assert set(rows[0]) == {"id", "input", "label", "llm_label", "llm_rationale"}


def test_stats_counts_unparsed_teacher_answers(tiny_cqa_dir, capsys):
    f = tiny_cqa_dir / "cqa" / "llm" / "test_CoT_0.json"
    comps = json.loads(f.read_text())
    comps[0] = "I am not sure at all."
    f.write_text(json.dumps(comps))
    assert main(["data", "stats", "--task", "cqa", "--data-dir", str(tiny_cqa_dir), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["splits"]["test"]
    assert stats == {"rows": 10, "teacher_parsed": 9, "teacher_unparsed": 1, "teacher_accuracy": 0.9}


def test_stats_exit_status_is_an_error_when_a_split_fails(tmp_path, capsys):
    (tmp_path / "cqa").mkdir()  # a data dir without the files: every split fails
    assert main(["data", "stats", "--task", "cqa", "--data-dir", str(tmp_path), "--json"]) == 1
    assert all("error" in v for v in json.loads(capsys.readouterr().out)["splits"].values())
    assert main(["data", "stats", "--task", "cqa", "--data-dir", str(tmp_path)]) == 1


def test_download_from_local_archive(tiny_cqa_dir, tmp_path):
    archive = tmp_path / "datasets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tiny_cqa_dir / "cqa").rglob("*.json"):
            z.write(f, f"datasets/cqa/{f.relative_to(tiny_cqa_dir / 'cqa')}")
        z.writestr("datasets/../evil.txt", "no")
    dest = tmp_path / "data"
    out = run("data", "download", "--archive", str(archive), "--dest", str(dest))
    assert out.returncode == 0, out.stderr
    assert (dest / "cqa" / "cqa_train.json").is_file() and (dest / "cqa" / "llm" / "train_CoT_2.json").is_file()
    assert not (tmp_path / "evil.txt").exists()
    stats = run("data", "stats", "--task", "cqa", "--data-dir", str(dest), "--json")
    assert json.loads(stats.stdout)["splits"]["train"]["rows"] == 36


def test_download_failure_is_clear(tmp_path):
    out = run("data", "download", "--archive", "http://127.0.0.1:9/datasets.zip", "--dest", str(tmp_path))
    assert out.returncode == 2
    assert "cannot download" in out.stderr and "--archive PATH" in out.stderr
