"""`dss export`: a trained student converted for a faster runtime (CTranslate2), for `dss predict --runtime`.

    dss export runs/demo-dss
    dss export runs/demo-dss --quantization int8
    dss predict --model runs/demo-dss/export-ct2-int8 --input "ben has a fig . cara has a saw . same kind ?"

RUN is a run folder (its model/ is exported) or a model folder. The export goes beside the model folder
(RUN/export-ct2, RUN/export-ct2-int8) unless --output says where; it holds the converted model, the
tokenizer and dss.json, so predict builds inputs as for the PyTorch student. Needs the `fast` extra
(pip install -e '.[fast]').
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from dss.student.export import FORMATS, QUANTIZATIONS
    p = subparsers.add_parser("export", help="convert a trained student for a faster runtime (CTranslate2)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run folder (runs/NAME, its model/ is exported) or a model folder")
    p.add_argument("--format", default="ct2", choices=FORMATS, help="the runtime's format (default: ct2)")
    p.add_argument("--quantization", default="float32", choices=QUANTIZATIONS,
                   help="weights: float32 (answers as PyTorch's fp32) or int8 (smaller, faster, answers may "
                   "differ; default: float32)")
    p.add_argument("--output", default=None, help="the export folder (default: RUN/export-ct2, or "
                   "RUN/export-ct2-int8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from transformers.utils import logging as hf_logging

    from dss.student.export import export
    hf_logging.disable_progress_bar()
    print(export(args.run, args.quantization, args.output))
    return 0
