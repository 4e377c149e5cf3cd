"""Damaged checkpoints on resume: the damaged file of the damaged checkpoint is named, the previous complete
checkpoint is used when there is one (and the resumed run is still the uninterrupted one), else the error names
overwrite=true. A token cache that cannot be read is rebuilt. Never a raw traceback, never a silent divergence."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_resume import ARGS, comparable, crash_at
from test_train import tiny_args

from dss.commands.cli import main
from dss.testing.release import write_cqa

pytestmark = pytest.mark.slow
STEP20 = Path("checkpoints/step_00000020")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The uninterrupted run, and one killed at step 24 that kept its step-10 and step-20 checkpoints."""
    root = tmp_path_factory.mktemp("ckpt")
    data = write_cqa(root / "data", {"train": 40, "test": 10}, batch=16)
    assert main(tiny_args(data, root / "full", *ARGS)) == 0
    mp = pytest.MonkeyPatch()
    crash_at(mp, 24)
    assert main(tiny_args(data, root / "cut", *ARGS, "keep_checkpoints=2")) == 130
    mp.undo()
    assert {p.name for p in (root / "cut" / "checkpoints").iterdir()} == {"step_00000010", "step_00000020"}
    return data, root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip(path: Path) -> None:  # same size, one byte changed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def state_edit(**changes):
    def edit(path: Path) -> None:
        state = json.loads(path.read_text())
        path.write_text(json.dumps(changes.get("whole", {**state, **changes})))
    return edit


DAMAGE = {
    "model.safetensors": truncate, "optimizer.bin": truncate, "scheduler.bin": flip,
    "random_states_0.pkl": truncate, "trainer_state.json": truncate,
}
STATE_DAMAGE = {"empty": (state_edit(whole={}), "step is None"),
                "step text": (state_edit(step="twenty"), "step is 'twenty', expected 20"),
                "accuracy text": (state_edit(best_valid_accuracy="high"), "best_valid_accuracy is 'high'")}


def fresh_copy(root: Path, name: str) -> Path:
    run = root / f"cut-{name}"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(root / "cut", run)
    return run


@pytest.mark.parametrize("name", sorted(DAMAGE) + sorted(STATE_DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(runs, name, capsys):
    data, root = runs
    run = fresh_copy(root, name.replace(" ", "_"))
    if name in DAMAGE:
        DAMAGE[name](run / STEP20 / name)
        said = name
    else:
        STATE_DAMAGE[name][0](run / STEP20 / "trainer_state.json")
        said = STATE_DAMAGE[name][1]
    capsys.readouterr()
    assert main(tiny_args(data, run, *ARGS, "keep_checkpoints=2", "--resume")) == 0
    err = capsys.readouterr().err
    assert "checkpoint step_00000020 is damaged" in err and said in err and "continuing from step_00000010" in err
    assert (run / "checkpoints" / "damaged-step_00000020").is_dir()
    assert comparable(run) == comparable(root / "full")  # resumed exactly, from the earlier checkpoint


def test_no_checkpoint_to_fall_back_to_names_overwrite(runs, capsys):
    data, root = runs
    run = fresh_copy(root, "only")
    shutil.rmtree(run / "checkpoints" / "step_00000010")
    truncate(run / STEP20 / "random_states_0.pkl")  # accelerate alone would warn and go on, diverging
    assert main(tiny_args(data, run, *ARGS, "--resume")) == 2
    err = capsys.readouterr().err
    assert "step_00000020 is damaged: random_states_0.pkl has" in err and "overwrite=true" in err
    assert "Traceback" not in err


def test_a_checkpoint_of_an_older_dss_is_checked_by_loading_its_files(runs, capsys):
    data, root = runs
    run = fresh_copy(root, "older")
    for ckpt in ("step_00000010", "step_00000020"):  # written before checkpoints listed their files
        state_path = run / "checkpoints" / ckpt / "trainer_state.json"
        state = json.loads(state_path.read_text())
        del state["files"]
        state_path.write_text(json.dumps(state))
    truncate(run / STEP20 / "optimizer.bin")
    assert main(tiny_args(data, run, *ARGS, "--resume")) == 0
    err = capsys.readouterr().err
    assert "step_00000020 is damaged: optimizer.bin cannot be loaded" in err
    assert comparable(run) == comparable(root / "full")


def test_a_truncated_token_cache_is_rebuilt(runs, capsys):
    data, root = runs
    run = root / "cache-run"
    args = [*ARGS, "--max-steps", "2", "--eval-steps", "2"]
    assert main(tiny_args(data, run, *args)) == 0
    [cache] = (run / "cache").glob("tokens-*.pt")
    size = cache.stat().st_size
    truncate(cache)
    assert main(tiny_args(data, run, *args, "--overwrite")) == 0
    assert "cannot be read" in capsys.readouterr().err and cache.stat().st_size == size
