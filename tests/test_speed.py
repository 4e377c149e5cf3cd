"""`dss speed` machinery on a tiny model: our loop and the reference trainer both run and report."""
from __future__ import annotations

import pytest

from dss.bench.train_speed import run_baseline, run_ours, summarize
from dss.student.config import TrainConfig

pytestmark = pytest.mark.slow


def test_speed_variants_report_throughput(tiny_cqa_dir, tmp_path):
    cfg = TrainConfig(task="cqa", data_dir=str(tiny_cqa_dir), method="dss", d_model=32, d_ff=64, heads=2, layers=1,
                      vocab_size=200, batch_size=4, dropout=0.0, output_dir=str(tmp_path),
                      mixed_precision="no")  # fp32: split and joint passes round alike only there
    runs = [run_ours(cfg, "dss", steps=2, warmup=1), run_ours(cfg, "dss-joint", steps=2, warmup=1),
            run_baseline(cfg, steps=2, warmup=1), run_ours(cfg, "dss-shared", steps=2, warmup=1)]
    assert [r["fast_kernels"] for r in runs] == [True, True, False, True]  # the baseline: transformers' modules
    assert run_ours(cfg, "dss-plain", steps=1, warmup=0)["fast_kernels"] is False
    for r in runs:
        assert r["examples_per_second"] > 0 and r["tokens_per_second"] > 0 and r["peak_memory_mb"] > 0
    # split and joint passes compute the same loss from the same initialisation and batches (no dropout)
    assert runs[0]["final_loss"] == pytest.approx(runs[1]["final_loss"], rel=1e-4)
    table = summarize(runs[:3])
    assert [s["variant"] for s in table] == ["dss", "dss-joint", "baseline"] and table[2]["x_baseline"] == 1.0
    # the same data: dss-shared counts each rationale row's source too, though it encodes each source once (it
    # has no prefix token on either source and its decoder prompts are not targets: 2 tokens fewer per example
    # of ~60; without the rationale rows' sources it would count ~40 % fewer)
    # (the counts themselves: a rate rounded to 0.1 times seconds rounded to 1 ms is off by more than 2 tokens
    # an example once the machine is slow)
    shared, ours = (r["tokens"] for r in (runs[3], runs[0]))
    assert 0.9 * ours < shared < ours


def test_repeats_alternate_their_order_and_ratios_are_taken_within_a_repeat():
    from dss.bench.train_speed import order
    assert [order(["a", "b"], r) for r in range(4)] == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    runs = [{"variant": v, "repeat": r, "examples_per_second": eps, "tokens_per_second": 1.0, "peak_memory_mb": 1.0,
             "threads": 1} for v, r, eps in [("dss", 0, 20), ("baseline", 0, 10), ("baseline", 1, 4), ("dss", 1, 6),
                                            ("baseline", 2, 10), ("dss", 2, 30)]]
    dss, base = summarize(runs)
    # the load fell in repeat 1 for both: ratios within repeats are 2.0, 1.5, 3.0, not a mix of repeats
    assert (dss["x_baseline"], dss["x_baseline_min"], dss["examples_per_second_min"]) == (2.0, 1.5, 6)
    assert base["x_baseline"] == 1.0 and dss["threads"] == 1


def test_examples_without_a_rationale_leave_every_variant(tmp_path, capsys):
    # unparsed teacher answers leave an example with its label row only (13 of e-SNLI's first 1,000): the
    # reference's collator needs a rationale per row, so the bench leaves such examples out of every variant
    from dss.bench.train_speed import _setup
    from dss.testing.release import cqa_completions, cqa_rows, write_release
    rows = cqa_rows(24)
    completions = cqa_completions(rows)
    completions[3] = completions[7] = "I cannot tell."
    write_release(tmp_path / "data", "cqa", "train", rows, completions)
    write_release(tmp_path / "data", "cqa", "test", cqa_rows(6, "test"), cqa_completions(cqa_rows(6, "test")))
    cfg = TrainConfig(task="cqa", data_dir=str(tmp_path / "data"), method="dss", d_model=32, d_ff=64, heads=2,
                      layers=1, vocab_size=200, batch_size=4, dropout=0.0, output_dir=str(tmp_path / "out"))
    features = _setup(cfg)[0]
    assert all(len(f["input_ids"]) == 2 for f in features) and len(features) < 24
    assert "have no rationale row" in capsys.readouterr().err
    base, ours = run_baseline(cfg, steps=2, warmup=1), run_ours(cfg, "dss", steps=2, warmup=1)
    assert base["examples_per_second"] > 0 and ours["examples_per_second"] > 0


def test_every_variant_and_the_reference_trainer_run_on_one_gpu(tiny_cqa_dir, tmp_path, monkeypatch):
    # transformers 5's Trainer runs DataParallel over every GPU it sees (n_gpu = torch.cuda.device_count()) while
    # our loop uses one: each variant's process sees only the first visible GPU, and the baseline refuses more
    from transformers import Seq2SeqTrainingArguments

    from dss.bench.train_speed import _child, one_gpu
    from dss.core.config import to_dict
    from dss.core.errors import ConfigError
    assert (one_gpu(None), one_gpu("2,3"), one_gpu("GPU-a1b2,GPU-c3d4"), one_gpu("")) == ("0", "2", "GPU-a1b2", "")
    cfg = TrainConfig(task="cqa", data_dir=str(tiny_cqa_dir), method="dss", d_model=32, d_ff=64, heads=2, layers=1,
                      vocab_size=200, batch_size=4, output_dir=str(tmp_path), mixed_precision="no")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,4")
    out = _child(to_dict(cfg), "baseline", 1, 0, "no")
    assert out["cuda_visible_devices"] == "3" and out["gpus"] == 0  # 0 here: a CPU
    monkeypatch.setattr(Seq2SeqTrainingArguments, "n_gpu", property(lambda self: 2))
    with pytest.raises(ConfigError, match="sees 2 GPUs and would run DataParallel"):
        run_baseline(cfg, steps=1, warmup=0)
