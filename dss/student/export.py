"""`dss export`: a trained student converted for a faster runtime, CTranslate2 (the `fast` extra).

    export("runs/demo-dss")                       -> runs/demo-dss/export-ct2/
    export("runs/demo-dss", quantization="int8")  -> runs/demo-dss/export-ct2-int8/

An export folder holds the converted model (model.bin, config.json and the vocabulary, CTranslate2's files),
the student's tokenizer files, and dss.json: the student's own (how it builds inputs) plus `export`, what
dss.student.runtimes needs to answer as PyTorch does (encoder-decoder or not, the end tokens, a forced end
token) and `source`, a fingerprint of the model folder it was made from (a retrained student makes it stale).
T5, BART and Llama-family students convert (what CTranslate2's transformers converter knows); a student that
forces a first token (mBART's forced_bos_token_id) is refused: dss would have to give it as a decoder prefix.
"""
from __future__ import annotations

import json
from pathlib import Path

from dss.core.errors import ConfigError
from dss.core.io import atomic_dir, atomic_write_json, read_json
from dss.student.run_folder import STUDENT_INFO, student_info

FORMATS = ("ct2",)
QUANTIZATIONS = ("float32", "int8")  # CTranslate2's CPU kernels; int8 weights, float32 activations elsewhere
INSTALL = "pip install -e '.[fast]' (or pip install 'ctranslate2>=4')"


def model_folder(run) -> Path:
    """The model folder of a run folder (RUN/model), or `run` itself when it is a model folder."""
    run = Path(run)
    folder = run / "model" if (run / "model").is_dir() else run
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{run}: neither a run folder with model/ nor a model folder (no config.json)")
    return folder


def export_folder(model_dir, quantization: str = "float32") -> Path:
    """Where a model folder's export lives: beside it, RUN/export-ct2 (or export-ct2-int8)."""
    return Path(model_dir).parent / ("export-ct2" + ("" if quantization == "float32" else f"-{quantization}"))


def fingerprint(model_dir) -> str:
    """The model folder as it is now (each file's name, size and modification time): a retrained student,
    saved into a fresh folder, never matches its old fingerprint. Cheap for a model of any size."""
    import hashlib
    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file())
    text = json.dumps([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_export(folder) -> bool:
    info = read_json(Path(folder) / STUDENT_INFO)
    return isinstance(info, dict) and "export" in info


def fresh(folder, model_dir) -> bool:
    """Whether `folder` is an export of `model_dir` as it is now."""
    if not is_export(folder):
        return False
    return student_info(folder).get("source", {}).get("fingerprint") == fingerprint(model_dir)


def export(run, quantization: str = "float32", output=None) -> Path:
    """Convert the student of a run (or model) folder to CTranslate2; returns the export folder."""
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {quantization!r}: one of {', '.join(QUANTIZATIONS)}")
    try:
        import ctranslate2  # noqa: F401 -- present or not decides what to say
    except ImportError:
        raise ConfigError(f"dss export needs CTranslate2: {INSTALL}") from None
    from dss.student.model import load_pretrained_tokenizer
    model_dir = model_folder(run)
    out = Path(output) if output else export_folder(model_dir, quantization)
    details = end_tokens(model_dir)
    with atomic_dir(out) as tmp:  # a failed conversion leaves an earlier export whole
        _converter(str(model_dir)).convert(str(tmp), quantization=quantization, force=True)
        load_pretrained_tokenizer(str(model_dir)).save_pretrained(str(tmp))
        info = {**student_info(model_dir), "export": {"format": "ct2", "quantization": quantization, **details},
                "source": {"model": str(model_dir.resolve()), "fingerprint": fingerprint(model_dir)}}
        atomic_write_json(tmp / STUDENT_INFO, info)
    return out


def end_tokens(model_dir) -> dict:
    """What decoding needs from the checkpoint's configs: encoder-decoder or not, the end tokens its generate()
    stops at (a list), and the token forced last when the length runs out (BART's forced_eos_token_id)."""
    from transformers import AutoConfig, GenerationConfig
    config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False)
    try:
        gen = GenerationConfig.from_pretrained(str(model_dir))
    except OSError:  # no generation_config.json: the model config's tokens
        gen = GenerationConfig.from_model_config(config)
    if getattr(gen, "forced_bos_token_id", None) is not None:
        raise ConfigError(f"{model_dir}: the checkpoint forces its first token (forced_bos_token_id="
                          f"{gen.forced_bos_token_id}, an mBART-style target language), which dss export does "
                          "not carry over; answer with the PyTorch runtime")
    eos = gen.eos_token_id if gen.eos_token_id is not None else config.eos_token_id
    return {"encoder_decoder": bool(getattr(config, "is_encoder_decoder", False)),
            "eos_token_id": eos if isinstance(eos, list) else [eos],
            "forced_eos_token_id": getattr(gen, "forced_eos_token_id", None)}


def _converter(path: str):
    """CTranslate2's transformers converter, with what transformers 5 no longer writes put back: BART's
    configs lost `normalize_before` (BART is post-norm: False), which the converter reads."""
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            model = super().load_model(model_class, model_name_or_path, **kwargs)
            if model.config.model_type == "bart" and not hasattr(model.config, "normalize_before"):
                model.config.normalize_before = False
            return model
    return Converter(path)
