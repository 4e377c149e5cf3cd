"""The student kinds, one interface picked once (`kind_of`); the training loop, evaluation and prediction call it
without asking what the student is.

    seq2seq  an encoder-decoder (T5, BART, ...): each row is source -> target, one forward per part
    causal   a decoder-only model (Llama, Qwen, ...): each row is one sequence, prompt then completion
    shared   method dss-shared on an encoder-decoder: x encoded once, the task prefix starts the decoder

Each kind is a module with the same names:

    tokenize(rows, tokenizer, cfg)        -> (source ids, target ids, decoder prompt lengths or None) per row
    cache_key(tokenizer, cfg)             -> what besides the rows decides those ids (the token cache's key)
    collate(features, pad_id, split_tasks=True, both_tasks=False) -> a micro-batch {"parts", token counts}
    to_device(batch, device)
    losses(model, net, part, alpha, divide) -> (loss, label_loss, rationale_loss) of one part
    prompt(tokenizer, prefix)             -> the decoder's given start for a task, or None
    generate(net, tokenizer, sources, device, max_input_length, settings, prompt) -> texts
    score(net, tokenizer, sources, candidates, device, max_input_length, max_target_length, prompt)
                                          -> each candidate's summed log-likelihood
    CALLS_PAST_FORWARD                    the model's parts are called directly (not its wrapped forward): the
                                          loop runs them under autocast and `sync_gradients(net)` sums the
                                          step's gradients itself
    check_parallelism(distributed_type)   ConfigError for a parallelism the kind cannot run under

A fourth kind (an encoder-only classifier, a VLM) is one more module and one more line in `kind_of`.
"""
from __future__ import annotations

from dss.student.methods import METHODS


def kind_of(model, method: str):
    """The kind of a model (or its config) trained with `method`: the one place that asks."""
    from dss.student.kinds import causal, seq2seq, shared
    config = getattr(model, "config", model)
    encoder_decoder = getattr(config, "is_encoder_decoder", False)
    if METHODS[method].shared_encoder:
        return shared
    return seq2seq if encoder_decoder else causal


def check_settings(cfg) -> None:
    """ConfigError for settings no kind can run (before any model is built)."""
    from dss.core.errors import ConfigError
    if not METHODS[cfg.method].shared_encoder:
        return
    if cfg.model == "tiny" and cfg.tiny_arch == "llama":
        raise ConfigError("method dss-shared needs an encoder (a seq2seq student), not tiny_arch=llama")
    if cfg.protocol == "reference":
        raise ConfigError("method dss-shared is dss's own; protocol reference runs the reference's methods")
