"""`dss` with deterministic kernels, for comparisons of losses across launches (benchmarks/gpu_check.py, step 2):

    python benchmarks/dss_deterministic.py train ...            (= python -m dss train ..., deterministic)
    accelerate launch --num_processes 1 benchmarks/dss_deterministic.py train ...

cuBLAS needs its workspace fixed before it starts (CUBLAS_WORKSPACE_CONFIG); fp32 matmuls stay IEEE fp32 (no
TF32). An op without a deterministic kernel warns on stderr instead of stopping (warn_only): the loss
comparison then says whether it mattered.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402  (after CUBLAS_WORKSPACE_CONFIG)

torch.use_deterministic_algorithms(True, warn_only=True)
torch.set_float32_matmul_precision("highest")  # torch's default: fp32 matmuls without TF32

if __name__ == "__main__":
    from dss.commands.cli import main
    raise SystemExit(main(sys.argv[1:]))
