"""Local Hugging Face folders shaped like the checkpoints users point `--model` at, but small and randomly
initialised, with tokenizers trained here: what `--model <folder>` meets on the hub, without the hub.

    t5_folder(path, texts)                  T5 v1.1: sentencepiece unigram, pad 0 = decoder start, eos 1, unk 2,
                                            no BOS, EOS appended, <extra_id_0..99>; gated-GELU, untied head
    t5_folder(path, texts, family="mt5")    the same conventions under MT5Config (and "umt5": UMT5Config)
    bart_folder(path, texts)                BART: byte-level BPE, <s> 0, <pad> 1, </s> 2, <unk> 3, <mask>;
                                            BOS and EOS added, decoder_start_token_id = EOS
    llama_folder(path, texts)               Llama 3: byte-level BPE, <|begin_of_text|> added, <|end_of_text|>
                                            EOS, no pad token, no chat template (a base model)
    qwen2_folder(path, texts)               Qwen2 instruct: byte-level BPE, no BOS, <|im_end|> EOS,
                                            <|endoftext|> pad, a ChatML chat template

Each writes config.json, the weights and the tokenizer with `save_pretrained`, so the Auto classes load it.
"""
from __future__ import annotations

import io
from pathlib import Path


def _quiet():
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # "Writing model shards" bars


SIZE = {"d_model": 32, "d_ff": 64, "layers": 2, "heads": 2}


def _unigram_vocab(texts: list[str], vocab_size: int) -> list[tuple[str, float]]:
    """sentencepiece unigram pieces (T5's own model type) with T5's special ids, as (piece, score)."""
    import sentencepiece as spm
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(t for t in texts if t), model_writer=proto, vocab_size=vocab_size,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False,
        character_coverage=1.0, num_threads=1, minloglevel=2, max_sentence_length=1 << 16)
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]


def t5_folder(path, texts: list[str], family: str = "t5", vocab_size: int = 400, dims: dict | None = None,
              model_vocab: int | None = None) -> Path:
    """dims: d_model, d_ff, layers, heads (default SIZE, tiny); model_vocab: the embedding rows (T5's 32128),
    at least the tokenizer's size."""
    from transformers import (
        MT5Config,
        MT5ForConditionalGeneration,
        T5Config,
        T5ForConditionalGeneration,
        T5Tokenizer,
        UMT5Config,
        UMT5ForConditionalGeneration,
    )
    _quiet()
    path = Path(path)
    tok = T5Tokenizer(vocab=_unigram_vocab(texts, vocab_size), extra_ids=100)
    cls, model_cls = {"t5": (T5Config, T5ForConditionalGeneration), "mt5": (MT5Config, MT5ForConditionalGeneration),
                      "umt5": (UMT5Config, UMT5ForConditionalGeneration)}[family]
    size = {**SIZE, **(dims or {})}
    config = cls(vocab_size=max(len(tok), model_vocab or 0), d_model=size["d_model"],
                 d_kv=size.get("d_kv", size["d_model"] // size["heads"]), d_ff=size["d_ff"], num_layers=size["layers"],
                 num_decoder_layers=size["layers"], num_heads=size["heads"], feed_forward_proj="gated-gelu",
                 tie_word_embeddings=False,
                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                 decoder_start_token_id=tok.pad_token_id)
    model_cls(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def bart_folder(path, texts: list[str], vocab_size: int = 400) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer
    _quiet()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    bpe.save_model(str(path))
    tok = BartTokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
    config = BartConfig(vocab_size=len(tok), d_model=SIZE["d_model"], encoder_layers=SIZE["layers"],
                        decoder_layers=SIZE["layers"], encoder_attention_heads=SIZE["heads"],
                        decoder_attention_heads=SIZE["heads"], encoder_ffn_dim=SIZE["d_ff"],
                        decoder_ffn_dim=SIZE["d_ff"], max_position_embeddings=1024, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id)
    BartForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def _byte_bpe(texts: list[str], specials: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    return tk


def llama_folder(path, texts: list[str], vocab_size: int = 400) -> Path:
    from tokenizers import processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    _quiet()
    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    tk = _byte_bpe(texts, [bos, eos], vocab_size)
    tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                      special_tokens=[(bos, tk.token_to_id(bos))])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=SIZE["d_model"], intermediate_size=SIZE["d_ff"],
                         num_hidden_layers=SIZE["layers"], num_attention_heads=SIZE["heads"],
                         num_key_value_heads=1, max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(Path(path))
    tok.save_pretrained(Path(path))
    return Path(path)


def qwen2_folder(path, texts: list[str], vocab_size: int = 400) -> Path:
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    _quiet()
    tk = _byte_bpe(texts, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], vocab_size)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHATML
    config = Qwen2Config(vocab_size=len(tok), hidden_size=SIZE["d_model"], intermediate_size=SIZE["d_ff"],
                         num_hidden_layers=SIZE["layers"], num_attention_heads=SIZE["heads"],
                         num_key_value_heads=1, max_position_embeddings=1024, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(Path(path))
    tok.save_pretrained(Path(path))
    return Path(path)
