"""The student and its tokenizer: a Hugging Face seq2seq checkpoint, or `tiny`, a small T5 built from a config.

`tiny` trains a sentencepiece (BPE) tokenizer on the run's training text (inputs, labels, rationales) and adds
the task prefixes as single tokens. It is stored as a `T5Tokenizer`, so both kinds load the same way:

    AutoTokenizer.from_pretrained(run / "model"); AutoModelForSeq2SeqLM.from_pretrained(run / "model")
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from dss.core.errors import ConfigError


def train_tokenizer(texts: list[str], prefixes: list[str], vocab_size: int, path: Path):
    """Train sentencepiece BPE pieces on texts; save them as a T5Tokenizer folder at path."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    proto = io.BytesIO()
    # T5's ids: pad 0 (also the decoder start), eos 1, unk 2; no bos. hard_vocab_limit=False lets a small
    # corpus end up with fewer pieces than asked instead of failing; identity normalisation keeps the text
    # as the student sees it. One thread keeps training deterministic.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(t for t in texts if t), model_writer=proto, vocab_size=vocab_size,
        model_type="bpe", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False,
        normalization_rule_name="identity", character_coverage=1.0, num_threads=1, minloglevel=2,
        max_sentence_length=1 << 16)
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    # The HF side reads (piece, score) as a unigram model (Viterbi over scores). sentencepiece's unigram
    # trainer stalls near single characters on small, repetitive corpora (61 pieces on the demo text), so
    # pieces come from BPE and each costs the same: Viterbi then picks the fewest pieces ("▁drill", not
    # "▁dr i l l"); earlier merges break ties.
    vocab = [(sp.id_to_piece(i), -1.0 + 1e-6 * sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    # added tokens are matched before word splitting, so "[label] x" always starts with one "[label]" token
    tok.add_tokens([p.strip() for p in prefixes if p.strip()])
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(path))
    (path / "spiece.model").write_bytes(proto.getvalue())  # the raw sentencepiece BPE model, for reference
    return tok


def load_tokenizer(path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(path))


def tiny_model(cfg, tokenizer):
    """A T5 with gated-GELU feed-forward (v1.1) and tied, scaled embeddings (transformers 5 always ties T5
    weights; untied without the output scaling starts from huge logits). Initialised from the global seed.
    tiny_arch=llama: a decoder-only Llama of the same width with 2 x layers layers (as many as the T5's
    encoder and decoder together), tied embeddings, no BOS (the tokenizer has none)."""
    from transformers import T5Config, T5ForConditionalGeneration

    if cfg.tiny_arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
            num_hidden_layers=2 * cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
            max_position_embeddings=cfg.max_input_length + cfg.max_target_length, attention_dropout=cfg.dropout,
            tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None))

    config = T5Config(
        vocab_size=len(tokenizer), d_model=cfg.d_model, d_kv=cfg.d_model // cfg.heads, d_ff=cfg.d_ff,
        num_layers=cfg.layers, num_decoder_layers=cfg.layers, num_heads=cfg.heads,
        dropout_rate=cfg.dropout, feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id)
    return T5ForConditionalGeneration(config)


HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")  # "t5-small", "google/flan-t5-base": what may be a hub id


def load_problem(name: str, e: BaseException) -> str:
    """What stopped a load, in a user's terms: a gated or private repo, remote code, or no hub (offline)."""
    seen, texts = e, []
    while seen is not None:
        texts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    if Path(name).expanduser().is_dir():
        if "trust_remote_code" in text:
            return (f"{name} needs code of its own (trust_remote_code), which dss never runs: use a checkpoint of "
                    "an architecture transformers ships")
        return f"{name} is a folder but holds no loadable model and tokenizer"
    if "GatedRepoError" in text or "gated repo" in text.lower():
        return (f"{name!r} is a gated repository: accept its terms on its hub page, then log in (`hf auth login`, "
                "or set HF_TOKEN) with an account that has access")
    if "trust_remote_code" in text:
        return (f"{name!r} needs code of its own from the hub (trust_remote_code), which dss never runs: use a "
                "checkpoint of an architecture transformers ships")
    if any(t in text for t in ("RepositoryNotFoundError", "401", "403", "private repository")):
        return (f"{name!r} was not found on the hub, or is private: check the id, and for a private repository "
                "log in (`hf auth login`, or set HF_TOKEN)")
    return (f"{name!r} is not a local folder and the Hugging Face hub could not serve it (offline?). Download "
            "it where there is internet (`hf download ID --local-dir DIR`) and pass the folder, or use --model "
            "tiny; set HF_HUB_OFFLINE=1 to fail fast without a network")


def _loading(name: str, what: str, load):
    """load(), with an error that says what to do when the folder or the hub cannot provide `name`."""
    try:
        return load()
    except (OSError, ValueError) as e:
        why = load_problem(name, e)
        raise ConfigError(f"cannot load {what} {name!r}: {why}. ({type(e).__name__}: {str(e)[:300]})") from None


def load_pretrained_tokenizer(name: str):
    from transformers import AutoTokenizer
    # trust_remote_code=False: refuse code from the hub at once (None would ask on a terminal and wait)
    return _loading(name, "tokenizer", lambda: AutoTokenizer.from_pretrained(name, trust_remote_code=False))


def load_pretrained(name: str, what: str = "model"):
    """(model, tokenizer) from a hub id or local folder, seq2seq or decoder-only as its config says;
    offline, a message that says what to do."""
    tokenizer = load_pretrained_tokenizer(name)
    if tokenizer.pad_token is None:  # Llama-style tokenizers have none; padding is masked and never a target
        tokenizer.pad_token = tokenizer.eos_token
    return _loading(name, what, lambda: load_student_model(name)), tokenizer


def load_student_model(name):
    """AutoModelForSeq2SeqLM, or AutoModelForCausalLM for a decoder-only config, in fp32 whatever the stored
    dtype: transformers 5 loads a checkpoint stored in bf16 (Llama, Qwen, Gemma, SmolLM) as bf16, and bf16
    weights with bf16 AdamW state round small updates away (at lr 5e-5 most of them). Autocast does the bf16
    compute; the master weights stay fp32, and so does what is saved."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM
    config = AutoConfig.from_pretrained(str(name), trust_remote_code=False)
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    return cls.from_pretrained(str(name), dtype=torch.float32, trust_remote_code=False)
