"""What a user can get wrong (settings, config files, a run folder) ends as one line `dss <command>: error: ...`
and exit status 2, never a traceback."""
from __future__ import annotations

import pytest
from test_train import tiny_args

from dss.commands.cli import main


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"dss {command}: error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def test_a_loop_of_extends_names_its_chain(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nmax_steps: 2\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    (tmp_path / "self.yaml").write_text("extends: self.yaml\n")
    assert main(["train", "--config", str(tmp_path / "a.yaml")]) == 2
    assert one_line_error(capsys, "train").endswith(
        f"extends: a.yaml makes a loop ({tmp_path}/a.yaml -> {tmp_path}/b.yaml -> {tmp_path}/a.yaml)")
    assert main(["bench", "--config", str(tmp_path / "self.yaml"), "--dry-run"]) == 2
    assert "extends: self.yaml makes a loop" in one_line_error(capsys, "bench")


def test_a_base_file_twice_is_no_loop(tmp_path):
    from dss.core.config import load_yaml
    (tmp_path / "base.yaml").write_text("lr: 0.1\n")
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\nseed: 3\n")
    (tmp_path / "top.yaml").write_text("extends: mid.yaml\n")
    assert load_yaml(tmp_path / "top.yaml") == {"lr": 0.1, "seed": 3}


@pytest.mark.parametrize("args,message", [
    (["--dropout", "1.0"], "dropout: 1.0 must be below 1.0"),
    (["lora_dropout=1"], "lora_dropout: 1.0 must be below 1.0"),
    (["--seed", "-1"], "seed: -1 is below the minimum 0"),
    (["--seed", str(2**32)], "seed: 4294967296 is above the maximum 4294967295"),
])
def test_out_of_range_settings_fail_before_training(args, message, tmp_path, capsys):
    assert main(["train", "--task", "demo", "--max-steps", "1", "--output-dir", str(tmp_path / "r"), *args]) == 2
    assert one_line_error(capsys, "train") == f"dss train: error: {message}"
    assert not (tmp_path / "r").exists()


def test_the_largest_seed_trains(tiny_cqa_dir, tmp_path):
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "r", "--seed", str(2**32 - 1), "--max-steps", "1")) == 0


@pytest.mark.parametrize("seeds", ["-1", f"0,{2**32}"])
def test_sweep_seeds_are_range_checked(seeds, capsys):
    assert main(["bench", "--seeds", seeds, "--dry-run"]) == 2
    assert "seeds:" in one_line_error(capsys, "bench")


def test_fewer_examples_than_one_batch_is_one_line(tiny_cqa_dir, tmp_path, capsys):
    assert main(tiny_args(tiny_cqa_dir, tmp_path / "r", "--batch-size", "1000", "--max-steps", "1")) == 2
    assert one_line_error(capsys, "train").endswith(
        "training examples are fewer than one batch of 1000; lower batch_size")


@pytest.mark.parametrize("name,extra", [("checkpoints", "--overwrite"), ("model", "--overwrite"),
                                        ("checkpoints", "--resume")])  # resume with no checkpoint starts over
def test_a_symlink_in_a_run_folder_is_refused_naming_it(name, extra, tiny_cqa_dir, tmp_path, capsys):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("the user's")
    (run / name).symlink_to(elsewhere)
    assert main(tiny_args(tiny_cqa_dir, run, "--max-steps", "1", extra)) == 2
    assert one_line_error(capsys, "train") == (
        f"dss train: error: {run / name} is a symbolic link (to {elsewhere}); dss train clears a run's files on a "
        "fresh start or overwrite and does not remove links: remove it, or train into a folder of real files "
        "(output_dir=...)")
    assert (run / name).is_symlink() and (elsewhere / "keep.txt").read_text() == "the user's"
