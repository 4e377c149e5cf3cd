"""TrainConfig: every knob of `dss train`, with its default, help text and range in one place.

Load it from flags, a YAML file (`--config F.yaml`) and `key=value` overrides through `dss.core.config.load_config`;
unknown keys are errors. The resolved config is saved as `config.json` in the run folder.

Batch arithmetic: `batch_size` is the GLOBAL number of training examples per optimizer step. It is split over
`grad_accum` micro-batches and then over the processes: each process forwards
`batch_size / (num_processes * grad_accum)` examples per micro-batch (for `dss` every example gives two rows,
its label row and its rationale row). The loss is normalised by the step's global token counts, so the
gradient is the same however the batch is split.
"""
from __future__ import annotations

from dataclasses import dataclass

from dss.core.config import check, field_
from dss.core.errors import ConfigError
from dss.student.kinds import check_settings
from dss.student.methods import METHOD_NAMES, METHODS
from dss.student.protocols import PROTOCOL_NAMES, PROTOCOLS

TRACKERS = ("tensorboard", "wandb", "mlflow")
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (and so a sweep's subsets) refuses anything larger


@dataclass
class TrainConfig:
    # data
    task: str = field_("demo", "task name (see `dss tasks`), or custom with task_options.train_file")
    task_options: dict = field_({}, "task constructor options, e.g. {train_file: my.jsonl} for custom")
    data_dir: str | None = field_(None, "release-layout data folder (default $DSS_DATA_DIR, then ./data)")
    method: str = field_("dss", "; ".join(f"{m.name}: {m.help}" for m in METHODS.values()), choices=METHOD_NAMES)
    labels: str = field_("gold", "label source for dss/single: gold labels or the teacher's (distill: always "
                         "teacher; standard: always gold)", choices=("gold", "teacher"))
    alpha: float = field_(0.5, "dss: loss = alpha * label_loss + (1 - alpha) * rationale_loss", min=0.0, max=1.0)
    protocol: str = field_("dss", "; ".join(f"{p.name}: {p.help}" for p in PROTOCOLS.values()) +
                           " (docs/protocol.md lists every difference)", choices=PROTOCOL_NAMES)
    input_format: str = field_("dss", "dss: NLI as 'Premise: ...\\nHypothesis: ...'; reference: as the reference "
                               "code builds inputs (NLI: premise + the tokenizer's EOS text + hypothesis; CQA: the "
                               "question unstripped), to reproduce its numbers", choices=("dss", "reference"))
    label_prefix: str = field_("[label] ", "dss: input prefix of the label task (reference code: 'predict: ')")
    rationale_prefix: str = field_("[rationale] ", "dss: input prefix of the rationale task ('explain: ')")
    rationales_per_example: int = field_(1, "dss: train on up to k of the teacher's rationales per example (the "
                                         "samples of `dss extract --samples N` that reach the voted label), each "
                                         "its own [rationale] row; the label row is not repeated, and the "
                                         "rationale loss is the token mean over all rationale rows, so alpha "
                                         "still splits the loss between the two tasks", min=1)
    rationales: str | None = field_(None, "JSONL written by `dss extract`: its labels/rationales replace the "
                                    "task's released teacher outputs, matched by example id")
    train_fraction: float = field_(1.0, "fraction of the training set, a nested subset fixed by seed "
                                   "(taken before distill drops unparsed teacher labels)", min=1e-9, max=1.0)
    max_eval_examples: int | None = field_(None, "cap on valid/test examples (quick runs; None = all)", min=1)
    # student
    model: str = field_("tiny", "'tiny' (small T5 from scratch, tokenizer trained on the run's text) or a "
                        "Hugging Face checkpoint, seq2seq or decoder-only: hub id or local path")
    tiny_arch: str = field_("t5", "tiny: t5 (encoder-decoder, `layers` each) or llama (decoder-only, 2 x layers; "
                            "prompt -> completion, dss.student.causal)", choices=("t5", "llama"))
    d_model: int = field_(128, "tiny: hidden size", min=8)
    layers: int = field_(2, "tiny: encoder and decoder layers", min=1)
    heads: int = field_(4, "tiny: attention heads (d_model must divide by it)", min=1)
    d_ff: int = field_(512, "tiny: feed-forward size", min=8)
    vocab_size: int = field_(2000, "tiny: sentencepiece vocabulary size (an upper bound on small corpora)",
                             min=64)
    dropout: float = field_(0.1, "tiny: dropout rate, below 1", min=0.0, below=1.0)
    # optimisation
    seed: int = field_(0, "seed for the subset, initialisation, dropout and batch order (numpy and torch take "
                       "0 to 2^32-1)", min=0, max=SEED_MAX)
    max_steps: int = field_(1000, "optimizer steps", min=1)
    batch_size: int = field_(32, "GLOBAL examples per optimizer step (split over grad_accum, then processes)",
                             min=1)
    grad_accum: int = field_(1, "micro-batches per optimizer step", min=1)
    lr: float | None = field_(None, "peak learning rate (default: 1e-3 for tiny, 5e-5 for a pretrained "
                              "checkpoint as in the paper)", min=0.0)
    warmup_steps: int | None = field_(None, "linear warm-up steps (default: warmup_ratio * max_steps; protocol "
                                      "reference: none)", min=0)
    warmup_ratio: float = field_(0.05, "warm-up as a fraction of max_steps when warmup_steps is unset",
                                 min=0.0, max=1.0)
    weight_decay: float = field_(0.0, "AdamW weight decay", min=0.0)
    max_grad_norm: float = field_(1.0, "gradient clipping norm (0 = off)", min=0.0)
    max_input_length: int = field_(512, "input tokens kept (longer inputs are truncated)", min=4)
    max_target_length: int = field_(256, "target tokens kept (rationales are long)", min=2)
    group_by_length: bool = field_(True, "batch examples of similar length together (less padding; "
                                  "protocol reference: off, random batches)")
    threads: int | None = field_(None, "torch CPU threads for this run (default: torch's own choice). On CPU the "
                                 "numbers depend on it: float sums are grouped per thread", min=1)
    gradient_checkpointing: bool = field_(False, "recompute activations in the backward pass: less memory, "
                                          "about a third more compute")
    lora_r: int = field_(0, "LoRA rank (0: train every weight); > 0 trains low-rank adapters through peft, "
                         "model/ holds the merged model and adapter/ the adapter", min=0)
    lora_alpha: float = field_(16.0, "LoRA scale numerator: the update is B @ A * lora_alpha / lora_r", min=0.0)
    lora_dropout: float = field_(0.05, "dropout on the LoRA input, below 1", min=0.0, below=1.0)
    lora_targets: list[str] = field_([], "modules that get adapters (default: peft's per-family choice, the "
                                     "attention query and value projections)")
    fast_kernels: bool = field_(True, "T5-family students: dropout, tanh-GELU and RMS norm as fused kernels "
                                "(dss.student.fast; the same maths, dropout's masks drawn another way)")
    mixed_precision: str = field_("auto", "auto | no | bf16 | fp16. auto: bf16 autocast where the hardware runs it "
                                  "natively (a CUDA GPU of compute capability 8.0+, a CPU with AVX512-BF16 or "
                                  "AMX), else no (fp32); config.json and results.json record what it resolved to "
                                  "(and the log says why). fp16: see force_fp16",
                                  choices=("auto", "no", "bf16", "fp16"))
    force_fp16: bool = field_(False, "allow mixed_precision=fp16 for a T5-family student (T5, mT5, UMT5, LongT5), "
                              "which dss otherwise refuses: T5's activations overflow fp16's range, and NaN losses "
                              "are common")
    # evaluation, logging, checkpoints
    eval_steps: int = field_(200, "evaluate on valid (label-only greedy decoding) and checkpoint every N steps",
                             min=1)
    eval_mode: str = field_("generate", "generate: greedy decoding of the label, as the paper evaluates; score: "
                            "the candidate answer (the task's label set, or a CQA row's choices) with the highest "
                            "summed log-likelihood under the label task", choices=("generate", "score"))
    eval_batch_size: int = field_(64, "examples per evaluation batch", min=1)
    test_last: bool = field_(False, "also test the last model (results.json test_accuracy_last): the reference "
                             "code's protocol, which reports test without selecting a checkpoint on valid")
    eval_max_new_tokens: int = field_(32, "generated tokens for a label (single: max_target_length)", min=1)
    log_steps: int = field_(10, "log loss/lr to metrics.jsonl and TensorBoard every N steps", min=1)
    tensorboard: bool = field_(True, "TensorBoard logs through Accelerate's trackers in <output_dir>/tb")
    report_to: list[str] = field_([], "more experiment trackers, through Accelerate's: wandb (project $WANDB_PROJECT "
                                  "or dss; WANDB_MODE=offline works), mlflow ($MLFLOW_TRACKING_URI; experiment "
                                  "dss); each gets the resolved config and every metrics.jsonl line",
                                  choices=TRACKERS)
    output_dir: str | None = field_(None, "the run folder (default runs/<task>-<method>, with -teacher for "
                                    "teacher labels)")
    keep_checkpoints: int = field_(1, "checkpoints kept, newest first (each holds the model, optimizer and RNG "
                                   "states); 2 leaves one to fall back to if the newest is found damaged on resume",
                                   min=1)
    resume: bool = field_(False, "continue from the latest checkpoint in output_dir/checkpoints")
    overwrite: bool = field_(False, "allow training into an output_dir that already holds results")

    def trackers(self) -> list[str]:
        """Accelerate tracker names: tensorboard (unless tensorboard=false), then report_to's, each once."""
        names = (["tensorboard"] if self.tensorboard else []) + [t for t in self.report_to if t != "tensorboard"]
        return list(dict.fromkeys(names))

    def __post_init__(self):
        check(self)
        if not self.output_dir:  # never a sweep's folder: sweeps are runs/<name>/<task>/... (see dss.bench)
            method = METHODS[self.method]
            teacher = "-teacher" if method.fixed_source is None and self.labels == "teacher" else ""
            self.output_dir = f"runs/{self.task}-{self.method}{teacher}"
        if self.lr is None:
            self.lr = 1e-3 if self.model == "tiny" else 5e-5
        protocol = PROTOCOLS[self.protocol]
        if protocol.subsets == "reference":  # the reference's inputs: its format and its task prefixes
            self.input_format = "reference"
            self.label_prefix = "predict: " if self.label_prefix == "[label] " else self.label_prefix
            self.rationale_prefix = "explain: " if self.rationale_prefix == "[rationale] " else self.rationale_prefix
        if not protocol.warmup:
            if self.warmup_steps:
                raise ConfigError(f"protocol {self.protocol} has no warm-up: drop warmup_steps={self.warmup_steps}")
            self.warmup_steps = 0
        if protocol.random_batches:
            self.group_by_length = False
        if protocol.test_every_eval:
            self.test_last = True
        if self.warmup_steps is None:
            self.warmup_steps = int(self.warmup_ratio * self.max_steps)
        if self.model == "tiny" and self.d_model % self.heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size ({self.batch_size}) must be divisible by grad_accum ({self.grad_accum})")
        if not self.label_prefix.strip() or not self.rationale_prefix.strip():
            raise ConfigError("label_prefix and rationale_prefix must not be empty")
        if self.label_prefix.strip() == self.rationale_prefix.strip():
            raise ConfigError("label_prefix and rationale_prefix must differ")
        if self.eval_mode == "score" and METHODS[self.method].rationale_in_target:
            raise ConfigError("eval_mode=score scores label targets; method single writes a rationale first "
                              "(use eval_mode=generate)")
        check_settings(self)  # what no student kind runs (dss.student.kinds)
        if self.rationales_per_example > 1 and METHODS[self.method].rationale_in_target:
            raise ConfigError("rationales_per_example > 1 is for method dss (single's target is one rationale)")

    @property
    def label_source(self) -> str:
        """Where the label target comes from, after the method's own rule."""
        return METHODS[self.method].label_source(self.labels)
