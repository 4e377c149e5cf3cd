"""Answering with an exported student (dss.student.export) instead of PyTorch: the same inputs, the same
greedy label-only decoding and the same closed-set scoring as dss.student.evaluate.answers.

    student = load("runs/demo-dss/export-ct2")          # CTranslate2, on CUDA when there is one
    student.generate(sources, max_new_tokens, prompt)   -> texts
    student.score(sources, candidates, prompt)          -> each candidate's summed log-likelihood (EOS included)
    answers(student, inputs, cfg, candidates)           -> [{"prediction", ...}] as evaluate.answers

RUNTIMES names what `dss predict --runtime` takes: torch (dss.student.evaluate, the default), ct2 (the float32
export) and ct2-int8 (int8 weights). Token ids are the tokenizer's, as PyTorch's: CTranslate2 is given them
as the vocabulary's token strings, which the export's vocabulary maps back to the same ids.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

RUNTIMES = {"torch": None, "ct2": "float32", "ct2-int8": "int8"}  # runtime -> the export's quantization


class Ct2Student:
    """A CTranslate2 export: a Translator (encoder-decoder) or a Generator (decoder-only), and its tokenizer.
    threads: CPU threads (0: CTranslate2's default); batch_size: examples per batch (CTranslate2 sorts by
    length within each call, as evaluate does)."""

    def __init__(self, folder, threads: int = 0, batch_size: int = 64, device: str | None = None):
        import ctranslate2

        from dss.student.kinds import kind_of
        from dss.student.model import load_pretrained_tokenizer
        from dss.student.run_folder import student_info
        self.info = student_info(folder)
        export = self.info["export"]
        self.tokenizer = load_pretrained_tokenizer(str(folder))
        if self.tokenizer.pad_token is None:  # as load_pretrained: Llama-style tokenizers have none
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.encoder_decoder = export["encoder_decoder"]
        self.kind = kind_of(SimpleNamespace(is_encoder_decoder=self.encoder_decoder), self.info["method"])
        self.end, self.forced_eos = export["eos_token_id"], export.get("forced_eos_token_id")
        device = device or ("cuda" if ctranslate2.get_cuda_device_count() else "cpu")
        cls = ctranslate2.Translator if self.encoder_decoder else ctranslate2.Generator
        self.model = cls(str(folder), device=device, intra_threads=threads)
        self.batch_size = batch_size

    def tokens(self, ids: list[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(ids)

    def generate(self, sources: list[str], max_new_tokens: int, prompt: list[int] | None = None) -> list[str]:
        """Greedy decoding of at most max_new_tokens (prompt: the decoder's given start, dss-shared's task
        prefix, not part of the answer); the decoded texts."""
        if self.encoder_decoder:
            ids = self._translate(sources, max_new_tokens, prompt or [])
        else:
            from dss.student.kinds.causal import prompt_ids
            starts = [self.tokens(p) for p in prompt_ids(self.tokenizer, sources, self.info["max_input_length"])]
            ids = [r.sequences_ids[0] for r in self.model.generate_batch(
                starts, max_batch_size=self.batch_size, max_length=max_new_tokens, sampling_topk=1,
                include_prompt_in_result=False, end_token=self.end)]
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)

    def _translate(self, sources: list[str], max_new_tokens: int, prompt: list[int]) -> list[list[int]]:
        """The answer ids of an encoder-decoder, as transformers' greedy generate() writes them."""
        src = self.tokenizer(sources, truncation=True, max_length=self.info["max_input_length"])["input_ids"]
        results = self.model.translate_batch(
            [self.tokens(s) for s in src], [self.tokens(prompt)] * len(src) if prompt else None,
            max_batch_size=self.batch_size, beam_size=1, max_decoding_length=len(prompt) + max_new_tokens,
            min_decoding_length=0, max_input_length=0, end_token=self.end)  # the prefix counts towards the length
        ids = [self.tokenizer.convert_tokens_to_ids(r.hypotheses[0][len(prompt):]) for r in results]
        if self.forced_eos is not None:  # transformers forces the end token as the last one the length allows
            ids = [x[:max_new_tokens - 1] if len(x) >= max_new_tokens else x for x in ids]
        return ids

    def score(self, sources: list[str], candidates: list[list[str]], prompt: list[int] | None = None
              ) -> list[list[float]]:
        """The summed log-likelihood of each source's candidates, EOS included (prompt: given before each
        candidate, not scored)."""
        rows = [(s, c) for s, cands in zip(sources, candidates) for c in cands]
        batch = self.batch_size * max(map(len, candidates))  # evaluate's batches: examples with their candidates
        totals = (self._score_seq2seq if self.encoder_decoder else self._score_causal)(rows, prompt or [], batch)
        out, pos = [], 0
        for cands in candidates:
            out.append(totals[pos:pos + len(cands)])
            pos += len(cands)
        return out

    def _score_seq2seq(self, rows: list[tuple[str, str]], prompt: list[int], batch: int) -> list[float]:
        """CTranslate2 starts each target with the decoder's start token and ends it with EOS itself: a target
        that truncation left without its EOS does not count the EOS it adds."""
        tok, info = self.tokenizer, self.info
        src = tok([s for s, _ in rows], truncation=True, max_length=info["max_input_length"])["input_ids"]
        tgt = tok(text_target=[c for _, c in rows], truncation=True, max_length=info["max_target_length"])["input_ids"]
        ends = [bool(t) and t[-1] == tok.eos_token_id for t in tgt]
        results = self.model.score_batch([self.tokens(s) for s in src],
                                         [self.tokens(prompt + (t[:-1] if e else t)) for t, e in zip(tgt, ends)],
                                         max_batch_size=batch, max_input_length=0)
        return [sum(r.log_probs[len(prompt):len(r.log_probs) - (not e)]) for r, e in zip(results, ends)]

    def _score_causal(self, rows: list[tuple[str, str]], prompt: list[int], batch: int) -> list[float]:
        """prompt + completion + EOS as one sequence; the completion's tokens' log-probabilities summed."""
        from dss.student.kinds.causal import completion_ids, prompt_ids
        prompts = prompt_ids(self.tokenizer, [s for s, _ in rows], self.info["max_input_length"])
        completions = completion_ids(self.tokenizer, [c for _, c in rows], self.info["max_target_length"])
        results = self.model.score_batch([self.tokens(p + c) for p, c in zip(prompts, completions)],
                                         max_batch_size=batch, max_input_length=0)
        return [sum(r.log_probs[len(r.log_probs) - len(c):]) for r, c in zip(results, completions)]


def load(folder, threads: int = 0, batch_size: int = 64) -> Ct2Student:
    """The exported student in `folder` (dss export's), ready to answer."""
    from dss.core.errors import ConfigError
    from dss.student.export import INSTALL, is_export
    if not is_export(folder):
        raise ConfigError(f"{folder}: not an export folder (dss export RUN --format ct2 writes one)")
    try:
        return Ct2Student(folder, threads, batch_size)
    except ImportError:
        raise ConfigError(f"the ct2 runtime needs CTranslate2: {INSTALL}") from None


def answers(student: Ct2Student, inputs: list[str], cfg, candidates=None, task: str = "label") -> list[dict]:
    """dss.student.evaluate.answers, from an exported student: greedy label-only decoding, or with
    `candidates` the best-scoring candidate (ties: the first). cfg: the method, prefixes and lengths."""
    from dss.student.evaluate import asked, chosen, decoded, new_tokens
    sources, prefix = asked(inputs, cfg, task)
    prompt = student.kind.prompt(student.tokenizer, prefix)
    if candidates is not None:
        return chosen(candidates, student.score(sources, candidates, prompt))
    return decoded(student.generate(sources, new_tokens(cfg, task), prompt), cfg)


def evaluate(student: Ct2Student, task, examples, cfg) -> tuple[float, list[dict]]:
    """dss.student.evaluate.evaluate from an exported student: (accuracy, records) in cfg.eval_mode."""
    from dss.student.evaluate import candidate_sets, judged
    candidates = candidate_sets(task, examples) if cfg.eval_mode == "score" else None
    records = answers(student, [e.input for e in examples], cfg, candidates)
    return judged(records, student.tokenizer, task, examples, cfg)


def exported(model, runtime: str) -> Path:
    """The export folder `dss predict --model MODEL --runtime RUNTIME` answers with: MODEL itself when it is an
    export, else its export beside it, made (or remade, when the student changed since) as needed."""
    import sys

    from dss.core.errors import ConfigError
    from dss.student import export
    if export.is_export(model):
        return Path(model)
    if RUNTIMES.get(runtime) is None:
        raise ConfigError(f"--runtime {runtime!r}: one of {', '.join(r for r in RUNTIMES if r != 'torch')}")
    model_dir = export.model_folder(model)
    folder = export.export_folder(model_dir, RUNTIMES[runtime])
    if not export.fresh(folder, model_dir):
        print(f"dss: exporting {model_dir} to {folder} ({RUNTIMES[runtime]})", file=sys.stderr)
        export.export(model_dir, RUNTIMES[runtime], folder)
    return folder
