"""The benchmark harness: the grid, shards, skip-finished, kill/rerun, CSV, markdown, PNG and `dss plot`.

Most tests swap the trainer for a fake that writes results.json from a closed-form accuracy, so they check the
harness itself in milliseconds; one test runs a real miniature grid with the tiny student.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from dss.bench import grid, report
from dss.bench import sweep as S
from dss.bench.grid import BenchConfig
from dss.commands.cli import main
from dss.core.errors import ConfigError
from dss.student import run_folder
from dss.student.data import data_fingerprint
from dss.student.run_folder import run_info

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_accuracy(method: str, fraction: float, seed: int) -> float:
    # dss a bit better than standard, better with more data, a little seed noise
    return 0.3 + 0.4 * fraction + (0.1 if method == "dss" else 0.0) + 0.01 * seed


class FakeTrain:
    """Stands in for dss.student.loop.train: writes the run folder's results.json like the trainer does."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[str] = []
        self.fail_on_call = fail_on_call

    def __call__(self, cfg) -> dict:
        self.calls.append(cfg.output_dir)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            # killed mid-write: half a results.json is left behind
            Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
            (Path(cfg.output_dir) / "results.json").write_text('{"valid_accuracy": 0.')
            raise KeyboardInterrupt
        acc = fake_accuracy(cfg.method, cfg.train_fraction, cfg.seed)
        res = {"valid_accuracy": acc, "test_accuracy": acc - 0.02, "best_step": 2,
               "train_examples": round(40 * cfg.train_fraction), "examples_per_second": 100.0,
               "parameters": 1000 * cfg.d_model}
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        # the trainer's record of how the run was made: what the sweep compares a finished cell with
        info = run_info(cfg, {"fingerprint": data_fingerprint(cfg)}, 1)
        (Path(cfg.output_dir) / "config.json").write_text(json.dumps(info))
        (Path(cfg.output_dir) / "results.json").write_text(json.dumps(res))
        return res


def make_cfg(tmp_path, data_dir, **kw) -> BenchConfig:
    values = dict(name="mini", output_dir=str(tmp_path / "sweep"), tasks=["cqa"], methods=["standard", "dss"],
                  fractions=[0.5, 1.0], seeds=[0, 1], data_dir=str(data_dir), train={"max_steps": 2})
    values.update(kw)
    return BenchConfig(**values)


def quiet(*a, **k):
    pass


# ------------------------------------------------------------------------------------------------ grid
def test_grid_collapses_label_sources_by_method(tmp_path):
    cfg = BenchConfig(tasks=["cqa"], methods=["standard", "distill", "dss", "single"], labels=["gold", "teacher"],
                      fractions=[1.0], seeds=[0])
    keys = [f"{c.method}-{c.labels}" for c in grid.grid(cfg)]
    # standard is gold by definition, distill teacher: no duplicate cells for them
    assert sorted(keys) == sorted(["standard-gold", "distill-teacher", "dss-gold", "dss-teacher", "single-gold",
                                   "single-teacher"])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_shards_cover_the_grid_exactly_once(n):
    cfg = BenchConfig(tasks=["cqa", "svamp"], fractions=[0.125, 0.25, 0.5, 0.75, 1.0], seeds=[0, 1, 2])
    cells = grid.grid(cfg)
    shards = [grid.shard_cells(cells, f"{i}/{n}") for i in range(n)]
    flat = [c for s in shards for c in s]
    assert len(flat) == len(cells) == len(set(flat))
    assert set(flat) == set(cells)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


def test_shard_and_model_specs_are_checked():
    for bad in ("2/2", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError, match="shard"):
            BenchConfig(shard=bad)
    assert grid.parse_model("tiny:d_model=64,layers=1") == {"model": "tiny", "d_model": "64", "layers": "1"}
    assert grid.parse_model("google/t5-v1_1-base") == {"model": "google/t5-v1_1-base"}
    assert grid.slug("google/t5-v1_1-base") == "google--t5-v1_1-base"
    with pytest.raises(ConfigError, match="set by the grid"):
        BenchConfig(train={"seed": 3})


def test_cell_configs_are_real_train_configs(tmp_path):
    cfg = BenchConfig(tasks=["cqa"], models=["tiny:d_model=64,heads=2"], data_dir="/data", train={"max_steps": 7})
    cell = grid.grid(cfg)[0]
    tcfg = grid.train_config(cfg, cell, tmp_path)
    assert (tcfg.task, tcfg.model, tcfg.d_model, tcfg.heads, tcfg.max_steps) == ("cqa", "tiny", 64, 2, 7)
    assert (tcfg.train_fraction, tcfg.seed, tcfg.data_dir) == (cell.fraction, cell.seed, "/data")
    assert Path(tcfg.output_dir) == cell.run_dir(tmp_path)
    with pytest.raises(ConfigError, match="nonsense"):  # unknown train keys fail before any training
        S.run_sweep(BenchConfig(tasks=["cqa"], output_dir=str(tmp_path / "x"), train={"nonsense": 1}),
                        train_fn=FakeTrain(), log=quiet)


def test_budgets_scale_with_the_fraction(tmp_path):
    table = {0.25: {"max_steps": 40, "eval_steps": 10}, 0.5: {}, "1.0": {"max_steps": 100}}  # YAML may give "1.0"
    cfg = BenchConfig(tasks=["cqa"], fractions=[0.25, 0.5, 1.0], train={"max_steps": 70}, train_by_fraction=table)
    steps = {c.fraction: (grid.train_config(cfg, c, tmp_path).max_steps, grid.train_config(cfg, c, tmp_path).eval_steps)
             for c in grid.grid(cfg)}
    assert steps[0.25] == (40, 10) and steps[0.5][0] == 70 and steps[1.0][0] == 100
    for bad, match in [({0.3: {"max_steps": 1}, 0.5: {}}, "no entry for fraction.s. 0.25"),
                       ({"x": {}}, "not a fraction"), ({0.5: 3}, "expected a mapping"),
                       ({0.25: {}, 0.5: {"seed": 1}}, "set by the grid")]:
        with pytest.raises(ConfigError, match=match):
            BenchConfig(tasks=["cqa"], fractions=[0.25, 0.5], train_by_fraction=bad)
    subset = BenchConfig(tasks=["cqa"], fractions=[0.25], train_by_fraction=table)  # a table may cover more
    assert subset.train_by_fraction[0.25]["max_steps"] == 40


# ---------------------------------------------------------------------------------- sweep with a fake
def test_sweep_writes_csv_markdown_and_png(tmp_path, tiny_cqa_dir):
    cfg = make_cfg(tmp_path, tiny_cqa_dir)
    fake = FakeTrain()
    out = S.run_sweep(cfg, train_fn=fake, log=quiet)
    sweep = tmp_path / "sweep"
    assert len(fake.calls) == len(out["trained"]) == 2 * 2 * 2

    rows = report.read_csv(sweep / "results.csv")
    assert len(rows) == 8
    assert set(report.CSV_COLUMNS) <= set(rows[0])
    for r in rows:
        assert r["test_accuracy"] == pytest.approx(fake_accuracy(r["method"], r["fraction"], r["seed"]) - 0.02)
        assert Path(r["run_dir"]).is_dir() and r["chance"] == pytest.approx(0.2)
        assert r["teacher_accuracy"] == pytest.approx(1.0)  # the fixture's teacher is always right
        assert r["params"] == 128_000 and r["train_examples"] == round(40 * r["fraction"])

    md = (sweep / "results.md").read_text()
    # dss at 50 %: test = 0.3 + 0.2 + 0.1 - 0.02 + 0.01 * seed -> 58.0 and 59.0: mean 58.5, s.e. 0.5
    assert "| dss (gold labels) | 58.5 ± 0.5 | 78.5 ± 0.5 |" in md
    assert "| standard fine-tuning | 48.5 ± 0.5 | 68.5 ± 0.5 |" in md
    assert "chance 20.0 %" in md and "teacher (PaLM 540B): test accuracy 100.0 %" in md
    assert "50 % (20)" in md  # fraction header names the number of training examples
    png = (sweep / "curves.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert not (sweep / "model_size.png").exists()  # one student: no model-size plot

    again = S.run_sweep(cfg, train_fn=fake, log=quiet)  # everything finished: nothing retrains
    assert again["trained"] == [] and len(fake.calls) == 8


def test_killed_sweep_reruns_only_unfinished_cells(tmp_path, tiny_cqa_dir):
    cfg = make_cfg(tmp_path, tiny_cqa_dir)
    killer = FakeTrain(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        S.run_sweep(cfg, train_fn=killer, log=quiet)
    finished = {c for c in grid.grid(cfg) if run_folder.read_results(c.run_dir(cfg.out_dir())) is not None}
    assert len(finished) == 2  # the third cell died with half a results.json: not finished

    rerun = FakeTrain()
    out = S.run_sweep(cfg, train_fn=rerun, log=quiet)
    assert len(rerun.calls) == 6 and set(out["skipped"]) == finished
    assert not {str(c.run_dir(cfg.out_dir())) for c in finished} & set(rerun.calls)
    assert killer.calls[2] in rerun.calls  # the killed cell is trained again
    assert len(report.read_csv(tmp_path / "sweep" / "results.csv")) == 8


def test_shards_share_one_folder(tmp_path, tiny_cqa_dir):
    fakes = [FakeTrain() for _ in range(3)]
    for i, fake in enumerate(fakes):
        S.run_sweep(make_cfg(tmp_path, tiny_cqa_dir, shard=f"{i}/3"), train_fn=fake, log=quiet)
    calls = [c for f in fakes for c in f.calls]
    assert len(calls) == len(set(calls)) == 8
    assert len(report.read_csv(tmp_path / "sweep" / "results.csv")) == 8  # the last shard sees every cell


def test_parallel_jobs_give_the_same_table(tmp_path, tiny_cqa_dir):
    S.run_sweep(make_cfg(tmp_path / "a", tiny_cqa_dir), train_fn=FakeTrain(), log=quiet)
    out = S.run_sweep(make_cfg(tmp_path / "b", tiny_cqa_dir, jobs=2), train_fn=FakeTrain(), log=quiet)
    assert len(out["trained"]) == 8
    md = [(tmp_path / d / "sweep" / "results.md").read_text() for d in "ab"]
    assert md[0] == md[1]


def test_model_size_plot_and_plot_command(tmp_path, tiny_cqa_dir, capsys):
    cfg = make_cfg(tmp_path, tiny_cqa_dir, models=["tiny:d_model=32,heads=2", "tiny:d_model=64"], seeds=[0])
    S.run_sweep(cfg, train_fn=FakeTrain(), log=quiet)
    sweep = tmp_path / "sweep"
    assert (sweep / "model_size.png").read_bytes().startswith(PNG_MAGIC)
    assert {r["params"] for r in report.read_csv(sweep / "results.csv")} == {32_000, 64_000}

    (sweep / "curves.png").unlink()
    (sweep / "model_size.png").unlink()
    assert main(["plot", str(sweep)]) == 0
    assert (sweep / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert (sweep / "model_size.png").is_file()
    assert "student `tiny:d_model=64`" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "nowhere")]) == 2


def test_mean_and_standard_error():
    assert report.mean_se([0.5]) == (0.5, None)
    mean, se = report.mean_se([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and se == pytest.approx(0.2 / math.sqrt(3))


def test_paper_figures_only_for_t5_base():
    from dss.bench.plot import is_t5_base
    assert is_t5_base("google/t5-v1_1-base") and is_t5_base("t5-base") and is_t5_base("/models/flan-t5-base")
    assert not is_t5_base("tiny") and not is_t5_base("google/t5-v1_1-large")


def test_subprocess_and_accelerate_commands(tmp_path):
    cfg = BenchConfig(launcher="accelerate", launch_args=["--num_processes", "8"])
    cmd = S.launch_command(cfg, tmp_path / "cell.yaml")
    assert cmd[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "8"]
    assert cmd[5:] == ["-m", "dss", "train", "--config", str(tmp_path / "cell.yaml")]
    assert S.launch_command(BenchConfig(launcher="subprocess"), Path("c.yaml"))[1:4] == ["-m", "dss", "train"]


def test_a_cell_command_always_continues_and_a_retrained_cell_is_cleared_once(tmp_path):
    """A cell's job may be rerun as is (a requeue): its config says resume=true, never overwrite; the overwrite
    of --retrain-changed happens when the command is made, and not under a `dss train` writing the cell."""
    import yaml

    from dss.core import locks
    cfg = BenchConfig(launcher="subprocess", output_dir=str(tmp_path / "sweep"), tasks=["cqa"], fractions=[1.0],
                      seeds=[0])
    cell = grid.grid(cfg)[0]
    run = cell.run_dir(cfg.out_dir())
    read = lambda: yaml.safe_load((run / "cell.yaml").read_text())  # noqa: E731
    S.cell_command(cfg, cell, cfg.out_dir(), grid.train_config(cfg, cell, cfg.out_dir()))
    assert read()["resume"] is True and read()["overwrite"] is False  # nothing yet: it starts at step 0
    (run / "checkpoints" / "step_00000002").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    changed = grid.train_config(cfg, cell, cfg.out_dir())
    changed.overwrite = True  # what run_sweep sets for a changed cell with --retrain-changed
    held = locks.acquire(run / ".lock")
    with pytest.raises(ConfigError, match="being written by another `dss train`"):
        S.cell_command(cfg, cell, cfg.out_dir(), changed)
    held.release()
    assert (run / "config.json").exists()
    S.cell_command(cfg, cell, cfg.out_dir(), changed)
    assert not (run / "checkpoints").exists() and not (run / "config.json").exists()
    assert read()["resume"] is True and read()["overwrite"] is False


def test_cli_overrides(tmp_path):
    from dss.commands.bench import build_config
    from dss.commands.cli import build_parser
    args = build_parser().parse_args(["bench", "--config", "configs/bench/svamp.yaml", "--seeds", "4,5",
                                      "--models", "tiny:d_model=64,heads=2;tiny", "train.max_steps=9",
                                      "fractions=[0.5]"])
    cfg = build_config(args)
    assert cfg.seeds == [4, 5] and cfg.fractions == [0.5] and cfg.name == "bench-svamp"
    assert cfg.models == ["tiny:d_model=64,heads=2", "tiny"]
    assert cfg.train["max_steps"] == "9" and "batch_size" in cfg.train  # YAML train values are kept


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "..", ".hidden", "two words"])
def test_a_sweep_name_is_one_folder_under_runs(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--name", name, "--seeds", "0", "--fractions", "1", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"dss bench: error: name: {name!r} is not a sweep name: one folder name under runs/, of letters, "
                   "digits and . _ - + = (starting with a letter or digit); output_dir=PATH puts a sweep elsewhere")
    assert not list(tmp_path.iterdir())


def test_sweep_names_the_makefile_gives_are_fine(tmp_path):
    for name in ("study-my_data.v2", "demo-seed7", "bench-esnli", "t5=base+lora"):
        assert BenchConfig(name=name).out_dir() == Path("runs") / name


# ------------------------------------------------------------------------------------------- configs
CONFIGS = sorted(p for p in (Path(__file__).resolve().parent.parent / "configs" / "bench").glob("*.yaml")
                 if not p.name.startswith("_"))  # _*.yaml: shared defaults that others extend


def test_there_are_configs():
    names = {p.stem for p in CONFIGS}
    assert {"demo", "cqa", "svamp", "esnli", "anli1", "paper", "study"} <= names
    # the sweeps keep their folders: runs/bench-cqa, ...
    assert grid.load_bench_config(CONFIGS[0].parent / "cqa.yaml").out_dir() == Path("runs/bench-cqa")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads(path, tmp_path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and " dss " in f" {first[2:]} ", f"{path}: first line must give its command"
    if "dss bench" in first:
        cfg = grid.load_bench_config(path)
        for cell in grid.grid(cfg):  # every cell's dss train config is valid
            grid.train_config(cfg, cell, tmp_path)
    else:
        from dss.core.config import load_config
        from dss.student.config import TrainConfig
        load_config(TrainConfig, path)


# ------------------------------------------------------------------------------- a real miniature grid
@pytest.mark.slow
def test_real_miniature_grid(tmp_path, tiny_cqa_dir, capsys):
    """2 fractions x 2 methods x 1 seed with the tiny student and the real trainer, through the CLI, two cells
    at a time (worker processes), then a rerun that trains nothing."""
    pytest.importorskip("dss.student.loop")
    sweep = tmp_path / "real"
    argv = ["bench", "--tasks", "cqa", "--methods", "standard,dss", "--fractions", "0.5,1", "--seeds", "0",
            "--data-dir", str(tiny_cqa_dir), "--output-dir", str(sweep), "--jobs", "2", "train.max_steps=3",
            "train.batch_size=8", "train.eval_steps=3", "train.d_model=32", "train.heads=2", "train.d_ff=64",
            "train.vocab_size=200", "train.layers=1", "train.tensorboard=false"]
    assert main(argv) == 0
    rows = report.read_csv(sweep / "results.csv")
    assert len(rows) == 4 and {r["method"] for r in rows} == {"standard", "dss"}
    for r in rows:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["params"] > 0
        assert r["train_examples"] == {0.5: 18, 1.0: 36}[r["fraction"]]  # 40 rows: 36 train, 4 valid carved
    out = capsys.readouterr().out
    assert "| standard fine-tuning |" in out and "| dss (gold labels) |" in out
    assert (sweep / "curves.png").read_bytes().startswith(PNG_MAGIC)
    mtimes = {r["run_dir"]: (Path(r["run_dir"]) / "results.json").stat().st_mtime_ns for r in rows}
    assert main(argv) == 0  # a rerun trains nothing
    assert mtimes == {r["run_dir"]: (Path(r["run_dir"]) / "results.json").stat().st_mtime_ns for r in rows}


def test_custom_study_from_cli_flags(tmp_path):
    """`make study DATA=my.jsonl`: --tasks custom --train-file reaches every cell as task_options."""
    from dss.commands.bench import build_config
    from dss.commands.cli import build_parser
    data = tmp_path / "my.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "input": f"is {i} even?", "label": "yes" if i % 2 == 0
                                        else "no", "rationale": f"{i} mod 2 is {i % 2}."}) + "\n" for i in range(50)))
    args = build_parser().parse_args(["bench", "--config", "configs/bench/study.yaml", "--tasks", "custom",
                                      "--train-file",
                                      str(data), "--output-dir", str(tmp_path / "study"), "--seeds", "0"])
    cfg = build_config(args)
    fake = FakeTrain()
    S.run_sweep(cfg, train_fn=fake, log=quiet)
    cell_cfg = grid.train_config(cfg, grid.grid(cfg)[0], cfg.out_dir())
    assert cell_cfg.task == "custom" and cell_cfg.task_options == {"train_file": str(data)}
    rows = report.read_csv(tmp_path / "study" / "results.csv")
    assert len(rows) == 8 and rows[0]["chance"] == 0.5 and rows[0]["teacher_accuracy"] is None  # yes/no: closed
    assert "the file's rationales: no test accuracy" in (tmp_path / "study" / "results.md").read_text()


# ------------------------------------------------------------------------------------------ cell identity
def test_a_finished_cell_is_reused_only_with_the_same_settings(tmp_path, tiny_cqa_dir, capsys):
    cfg = make_cfg(tmp_path, tiny_cqa_dir)
    S.run_sweep(cfg, train_fn=FakeTrain(), log=quiet)
    changed = make_cfg(tmp_path, tiny_cqa_dir, train={"max_steps": 3, "lr": 0.01})
    with pytest.raises(ConfigError, match=r"(?s)8 cell\(s\).*max_steps: 2 -> 3"):
        S.run_sweep(changed, train_fn=FakeTrain(), log=quiet)
    argv = ["bench", "--tasks", "cqa", "--fractions", "0.5,1", "--seeds", "0,1", "--data-dir", str(tiny_cqa_dir),
            "--output-dir", str(tmp_path / "sweep"), "train.max_steps=3", "train.lr=0.01", "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("changed  cqa/") == 8 and "lr: 0.001 -> 0.01" in out and "0 done, 0 todo, 8 changed" in out
    fake = FakeTrain()
    out = S.run_sweep(dataclasses.replace(changed, retrain_changed=True), train_fn=fake, log=quiet)
    assert len(fake.calls) == 8  # retrained, not reused
    again = FakeTrain()
    S.run_sweep(changed, train_fn=again, log=quiet)
    assert again.calls == []  # now they match


def test_a_study_on_other_data_does_not_reuse_the_old_cells(tmp_path):
    def write(path, flip):
        path.write_text("".join(json.dumps({"input": f"is {i} even?", "label": ("no" if flip else "yes")
                                            if i % 2 == 0 else "maybe", "rationale": f"{i} mod 2"}) + "\n"
                                for i in range(50)))
    data = tmp_path / "my.jsonl"
    write(data, flip=False)
    cfg = BenchConfig(tasks=["custom"], task_options={"train_file": str(data)}, fractions=[1.0], seeds=[0],
                      output_dir=str(tmp_path / "study"), train={"max_steps": 2})
    S.run_sweep(cfg, train_fn=FakeTrain(), log=quiet)
    assert len(S.run_sweep(cfg, train_fn=FakeTrain(), log=quiet)["skipped"]) == 2
    write(data, flip=True)  # same file name, other content
    with pytest.raises(ConfigError, match="data: content changed"):
        S.run_sweep(cfg, train_fn=FakeTrain(), log=quiet)
    other = tmp_path / "other.jsonl"
    write(other, flip=False)
    with pytest.raises(ConfigError, match="task_options"):
        S.run_sweep(dataclasses.replace(cfg, task_options={"train_file": str(other)}), train_fn=FakeTrain(),
                        log=quiet)


def test_token_cache_is_keyed_by_content(tmp_path):
    from dss.student import batching as D
    from dss.student import model as M
    from dss.student.config import TrainConfig
    from dss.student.kinds import seq2seq
    cfg = TrainConfig()
    tok = M.train_tokenizer(["a b c d e f", "x y z"], ["[label] ", "[rationale] "], 64, tmp_path / "tok")
    rows = [[D.Row("a b", "c", D.LABEL)], [D.Row("x", "y z", D.LABEL)]]
    D.cached_tokenize(rows, tok, cfg, tmp_path / "cache", seq2seq)
    D.cached_tokenize(rows, tok, cfg, tmp_path / "cache", seq2seq)
    assert len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 1
    rows[1][0].target = "y"
    labels = D.cached_tokenize(rows, tok, cfg, tmp_path / "cache", seq2seq)[1]["labels"]
    assert labels == [tok(text_target="y")["input_ids"]]
    assert len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 2


def test_the_paper_sweep_offline_names_everything_missing_before_any_cell(tmp_path, tiny_cqa_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cfg = grid.load_bench_config(CONFIGS[0].parent / "paper.yaml", {"output_dir": str(tmp_path / "paper"),
                                                                   "data_dir": str(tiny_cqa_dir), "tasks": "cqa,anli1"})
    assert cfg.train["input_format"] == "reference" and cfg.train["test_last"] is True
    with pytest.raises(ConfigError) as e:
        S.preflight(cfg)
    msg = str(e.value)
    assert "anli1 train:" in msg and "google/t5-v1_1-base" in msg and "no CUDA GPU" in msg
    assert "cqa train" not in msg  # the tiny cqa release is there
    cfg = dataclasses.replace(cfg, min_train_rows={"cqa": 1000})
    with pytest.raises(ConfigError, match="cqa train has 36 rows here, the sweep needs 1,000"):
        S.preflight(cfg)


def test_a_setting_added_later_counts_as_its_default_for_older_cells():
    from dss.core.config import to_dict
    from dss.student import run_folder as RF
    from dss.student.config import TrainConfig
    now = to_dict(TrainConfig(task="demo"))
    added = ("tiny_arch", "rationales_per_example", "lora_targets", "report_to")  # a str, an int and two lists
    older = {k: v for k, v in now.items() if k not in added}  # made before they existed
    stored = {"config": older, "protocol": RF.PROTOCOL, "data": {"fingerprint": "f"}}
    assert RF.identity_changes(stored, now, "f") == []
    changed = to_dict(TrainConfig(task="demo", tiny_arch="llama", rationales_per_example=2))
    assert RF.identity_changes(stored, changed, "f") == ["rationales_per_example: None -> 2",
                                                         "tiny_arch: None -> 'llama'"]


def test_each_method_and_label_source_has_its_own_line_colour():
    from dss.bench.plot import line_color
    lines = [("standard", "gold"), ("dss", "gold"), ("dss", "teacher"), ("distill", "teacher"), ("single", "gold")]
    assert len({line_color(m, labels) for m, labels in lines}) == len(lines)
