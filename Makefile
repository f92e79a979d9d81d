# Set-up and the two everyday commands. On a CPU-only machine TORCH pins the CPU wheel
# so pip never pulls a multi-GB CUDA build; GPU users run `make setup TORCH=torch`
# (or install their CUDA torch first: a torch that is already installed is kept).
PY      ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
NPROC   ?= 2
DATA    ?= data/synthetic-4
RUN     ?= runs/demo
BIN      = $(VENV)/bin

.PHONY: setup demo test test-fast lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"

# The main job on the built-in default data: partition the synthetic graph into 4 METIS
# parts, then train 2 ranks with torchrun on them. Each demo partitions anew, and a run
# directory belongs to the dataset it started on (a resume onto another is refused),
# so the demo's run starts afresh too.
demo: setup
	$(BIN)/giantgcn-partition --input synthetic --num-parts 4 --out $(DATA) --force
	rm -rf $(RUN)
	$(BIN)/torchrun --standalone --nproc-per-node $(NPROC) -m dist_train \
	  --data $(DATA) --config configs/default.yaml --out $(RUN)
	@echo "curves: $(RUN)/curves.png (redraw or compare runs: $(BIN)/giantgcn-plot $(RUN) ...)"

test: setup
	$(BIN)/python -m pytest -q --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not multiproc"

lint: setup
	$(BIN)/ruff check partition dist_train tests benchmarks

bench: setup
	$(BIN)/python benchmarks/partition_bench.py
	$(BIN)/python benchmarks/sampler_bench.py
	$(BIN)/python benchmarks/train_bench.py

clean:
	rm -rf $(VENV) runs data benchmarks/out *.egg-info
