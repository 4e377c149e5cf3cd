"""`dss speed` machinery on a tiny model: our loop and the reference trainer both run and report."""
from __future__ import annotations

import pytest

from dss.bench.train_speed import run_baseline, run_ours, summarize
from dss.student.config import TrainConfig

pytestmark = pytest.mark.slow


def test_speed_variants_report_throughput(tiny_cqa_dir, tmp_path):
    cfg = TrainConfig(task="cqa", data_dir=str(tiny_cqa_dir), method="dss", d_model=32, d_ff=64, heads=2, layers=1,
                      vocab_size=200, batch_size=4, dropout=0.0, output_dir=str(tmp_path))
    runs = [run_ours(cfg, "dss", steps=2, warmup=1), run_ours(cfg, "dss-joint", steps=2, warmup=1),
            run_baseline(cfg, steps=2, warmup=1)]
    for r in runs:
        assert r["examples_per_second"] > 0 and r["tokens_per_second"] > 0 and r["peak_memory_mb"] > 0
    # split and joint passes compute the same loss from the same initialisation and batches (no dropout)
    assert runs[0]["final_loss"] == pytest.approx(runs[1]["final_loss"], rel=1e-4)
    table = summarize(runs)
    assert [s["variant"] for s in table] == ["dss", "dss-joint", "baseline"] and table[2]["x_baseline"] == 1.0
