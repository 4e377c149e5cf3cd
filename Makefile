# dss — every target prints the exact command it runs. Variables override defaults: make demo SEEDS=0,1
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on the project's machines this is the local CPU wheel. GPU users name a CUDA build and
# the PyTorch index it is on: make install TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_PIP = $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) )"$(TORCH)"
DSS := $(BIN)/dss

.PHONY: FORCE install test demo help bench-cqa bench-svamp bench-esnli bench-anli1 bench-paper bench-paper-offline train \
  extract study plot active active-esnli

help:
	@echo "make install   create $(VENV) and install dss with its dev extra (torch first: TORCH=$(TORCH))"
	@echo "               GPUs: make install TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126"
	@echo "               (the index of your driver's CUDA version); another TORCH or TORCH_INDEX reinstalls torch"
	@echo "make test      run the test suite"
	@echo "make demo      the embedded data-efficiency study (standard vs DSS, 2 CPU cores, <= 10 min)"
	@echo "make bench-cqa | bench-svamp | bench-esnli | bench-anli1"
	@echo "               offline studies on the released PaLM rationales in DSS_DATA_DIR ($(DSS_DATA_DIR)), tiny students"
	@echo "make bench-paper  the paper's setup: T5 v1.1 base, 4 tasks, 4 seeds, both label sources (GPUs + hub)"
	@echo "make bench-paper-offline  the same protocol (protocol=reference) on the offline data, tiny student, CPU"
	@echo "make active    which examples the teacher should answer: random vs uncertainty vs student-first on the demo"
	@echo "make active-esnli  the same on e-SNLI's offline pool (replayed PaLM answers)"
	@echo "make train DATA=my.jsonl [VALID=v.jsonl] [TEST=t.jsonl] [METHOD=dss]   one student on your data"
	@echo "make extract TASK=custom DATA=my.jsonl TEACHER=gemini:... EXEMPLARS=ex.yaml   teacher rationales for your data"
	@echo "make study DATA=my.jsonl [TEACHER=.. EXEMPLARS=ex.yaml]   a data-efficiency study on your data, end to end"
	@echo "make plot SWEEP=runs/demo               redraw a sweep's figures from its results.csv"
	@echo "Sweep variables: SEEDS=0,1 FRACTIONS=0.25,1 METHODS=standard,dss LABELS=gold,teacher MODELS=tiny"
	@echo "  STEPS=400 SHARD=0/2 JOBS=2 LAUNCHER=accelerate ARGS='train.lr=3e-4 ...'"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# $(VENV)/.torch records the torch installed (TORCH and TORCH_INDEX). TORCH or TORCH_INDEX given (command line
# or environment) and other than that: torch is reinstalled (--force-reinstall: pip would keep 2.13.0+cpu for
# TORCH=torch==2.13.0 from a CUDA index), then dss. Not given: the venv's torch stays (make test on a GPU venv
# does not put the default CPU pin back); a venv without the record gets the default. Last, a loud warning
# if this machine has NVIDIA GPUs that the torch installed cannot use.
TORCH_HAD := $(shell cat $(VENV)/.torch 2>/dev/null)
TORCH_GIVEN := $(filter-out file,$(origin TORCH) $(origin TORCH_INDEX))
ifneq ($(if $(TORCH_GIVEN),$(TORCH_PIP),$(or $(TORCH_HAD),$(TORCH_PIP))),$(TORCH_HAD))
$(VENV)/.torch: FORCE
endif
$(VENV)/.torch: $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --force-reinstall --no-deps $(TORCH_PIP)
	$(BIN)/pip install --quiet $(TORCH_PIP)
	echo '$(TORCH_PIP)' > $@

$(VENV)/.installed: $(VENV)/.torch setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m dss.core.hardware
	touch $@

FORCE:

install: $(VENV)/.installed

test: install
	$(BIN)/ruff check dss tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ----------------------------------------------------------------------------------------------- studies
# Each target runs one `dss` command; make echoes it, expanded, as it starts. Unset variables add nothing,
# so the YAML config under configs/ holds the defaults and these only override.
DSS_DATA_DIR ?= ../shared/dss-data
PAPER_DATA_DIR ?= data
# Every documented variable means one thing wherever a target reads it; a variable given on the command line
# that the target does not read is an error naming it (make train STEPS=200 used to be silently ignored).
USER_VARS = DATA VALID TEST METHOD MODEL OUT TASK TEACHER BASE_URL RATIONALES EXEMPLARS SWEEP SEEDS FRACTIONS \
  METHODS LABELS MODELS STEPS SHARD JOBS LAUNCHER NAME ARGS
given = $(foreach v,$(USER_VARS),$(if $(filter command line,$(origin $(v))),$(v)))
only = $(if $(filter-out $(1),$(given)),$(error make $@ does not read $(filter-out $(1),$(given)); it reads: $(1)))
SWEEP_VARS = SEEDS FRACTIONS METHODS LABELS MODELS STEPS SHARD JOBS LAUNCHER NAME ARGS
SWEEP_FLAGS = $(strip $(if $(SEEDS),--seeds $(SEEDS)) $(if $(FRACTIONS),--fractions $(FRACTIONS)) \
  $(if $(METHODS),--methods $(METHODS)) $(if $(LABELS),--labels $(LABELS)) $(if $(MODELS),--models '$(MODELS)') \
  $(if $(SHARD),--shard $(SHARD)) $(if $(JOBS),--jobs $(JOBS)) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(if $(NAME),--name $(NAME)) \
  $(if $(STEPS),train.max_steps=$(STEPS)) $(ARGS))

demo: $(VENV)/.installed
	$(call only,$(SWEEP_VARS))
	$(DSS) bench --config configs/bench/demo.yaml $(SWEEP_FLAGS)

bench-cqa bench-svamp bench-esnli bench-anli1 bench-paper-offline: $(VENV)/.installed
	$(call only,$(SWEEP_VARS))
	$(DSS) bench --config configs/bench/$(@:bench-%=%).yaml --data-dir $(DSS_DATA_DIR) $(SWEEP_FLAGS)

# needs the full release (`dss data download` fills ./data; e-SNLI's 549k train rows with rationales) and the hub
bench-paper: $(VENV)/.installed
	$(call only,$(SWEEP_VARS))
	$(DSS) bench --config configs/bench/paper.yaml --data-dir $(PAPER_DATA_DIR) $(SWEEP_FLAGS)

# ------------------------------------------------------------------------------------------ your own data
METHOD ?= dss
MODEL ?= tiny
TASK ?= custom
RATIONALES ?=
CUSTOM_FILES = $(strip $(if $(DATA),--train-file $(DATA)) $(if $(VALID),--valid-file $(VALID)) $(if $(TEST),--test-file $(TEST)))

DATA_STEM = $(basename $(notdir $(DATA)))
TRAIN_VALUES = $(strip method=$(METHOD) model=$(MODEL) output_dir=$(or $(OUT),runs/train-$(DATA_STEM)-$(METHOD)) \
  $(if $(STEPS),max_steps=$(STEPS)) $(if $(RATIONALES),rationales=$(RATIONALES)) $(ARGS))
train: $(VENV)/.installed
	$(call only,DATA VALID TEST METHOD MODEL OUT STEPS RATIONALES ARGS)
	$(if $(DATA),,$(error make train: set DATA=my.jsonl (rows with input, label and optionally rationale)))
	$(DSS) train --task custom $(CUSTOM_FILES) $(TRAIN_VALUES)

# a custom task has no built-in prompt: its few-shot examples come from EXEMPLARS (a YAML or JSONL file)
EXTRACT_FLAGS = $(strip $(CUSTOM_FILES) $(if $(BASE_URL),--base-url $(BASE_URL)) $(if $(EXEMPLARS),--exemplars $(EXEMPLARS)))
extract: $(VENV)/.installed
	$(call only,TASK DATA VALID TEST TEACHER BASE_URL RATIONALES EXEMPLARS ARGS)
	$(if $(TEACHER),,$(error make extract: set TEACHER=..., e.g. TEACHER=gemini:gemini-3.5-flash))
	$(DSS) extract --task $(TASK) --teacher $(TEACHER) $(EXTRACT_FLAGS) $(if $(RATIONALES),--out $(RATIONALES)) $(ARGS)

# One sweep folder per data file (runs/study-<file>; NAME= to choose): a study on other data never finds the
# old study's cells. With TEACHER set, rationales are extracted first (into RATIONALES) and every cell trains
# on them.
STUDY_NAME = $(or $(NAME),study-$(DATA_STEM))
STUDY_RATIONALES = $(or $(RATIONALES),runs/$(STUDY_NAME)-rationales.jsonl)
STUDY_FLAGS = $(strip $(if $(or $(TEACHER),$(RATIONALES)),train.rationales=$(STUDY_RATIONALES)) \
  $(filter-out --name $(NAME),$(SWEEP_FLAGS)) --name $(STUDY_NAME))
study: $(VENV)/.installed
	$(call only,DATA VALID TEST TEACHER BASE_URL RATIONALES EXEMPLARS $(SWEEP_VARS))
	$(if $(DATA),,$(error make study: set DATA=my.jsonl))
	$(if $(TEACHER),$(if $(EXEMPLARS),,$(error make study TEACHER=..: set EXEMPLARS=my-exemplars.yaml too (a few worked examples: the teacher's prompt for your data, docs/teachers.md))))
	$(if $(TEACHER),$(DSS) extract --task custom --teacher $(TEACHER) $(EXTRACT_FLAGS) --out $(STUDY_RATIONALES))
	$(DSS) bench --config configs/bench/study.yaml --tasks custom $(CUSTOM_FILES) $(STUDY_FLAGS)

# active, budget-capped distillation (dss active): chains of rounds, accuracy against teacher spend
active: $(VENV)/.installed
	$(call only,SEEDS JOBS NAME ARGS)
	$(DSS) active --config configs/active/demo.yaml $(ACTIVE_FLAGS)

active-esnli: $(VENV)/.installed
	$(call only,SEEDS JOBS NAME ARGS)
	$(DSS) active --config configs/active/esnli.yaml --data-dir $(DSS_DATA_DIR) $(ACTIVE_FLAGS)

ACTIVE_FLAGS = $(strip $(if $(SEEDS),--seeds $(SEEDS)) $(if $(JOBS),--jobs $(JOBS)) $(if $(NAME),--name $(NAME)) $(ARGS))

plot: $(VENV)/.installed
	$(call only,SWEEP)
	$(DSS) plot $(or $(SWEEP),runs/demo)
