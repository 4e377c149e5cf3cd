"""`dss train` under FSDP on CPU processes, for tests: accelerate runs FSDP on GPUs only (on CPU an FSDP launch
becomes DDP, which dss refuses), so this makes the usual Accelerator and then turns it into an FSDP one
(fsdp_version 2, each T5Block a unit; FSDP_LAYER=LlamaDecoderLayer for tiny_arch=llama), as
`accelerate launch --config_file configs/accelerate/fsdp-t5.yaml` would on GPUs. Run under torchrun:

    torchrun --standalone --nproc_per_node 2 tests/fsdp_cpu.py train --task demo ...
"""
from __future__ import annotations

import os
import sys


def main(argv=None) -> int:
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    import dss.student.loop as loop
    from dss.commands.cli import main as dss_main

    make = loop.make_accelerator

    def fsdp_accelerator(cfg):
        accelerator = make(cfg)
        accelerator.state.fsdp_plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
            transformer_cls_names_to_wrap=[os.environ.get("FSDP_LAYER", "T5Block")], reshard_after_forward=True,
            state_dict_type="SHARDED_STATE_DICT", cpu_ram_efficient_loading=True)  # as fsdp-t5.yaml
        accelerator.state.distributed_type = DistributedType.FSDP
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # as accelerate itself sets both
        return accelerator

    loop.make_accelerator = fsdp_accelerator
    return dss_main(argv)


if __name__ == "__main__":
    sys.exit(main())
