# The README's two commands: `make demo` runs the main job on its default data,
# `make test` runs the test suite. Both create .venv and install into it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test install bench lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# pretrain a small GPT on "The Verdict" (fetched, or from $$TINYGRAD_LLM_DATA_DIR), then
# generate from the checkpoint it wrote
demo: $(STAMP)
	$(BIN)/tinygrad-llm pretrain --out runs/demo
	$(BIN)/tinygrad-llm generate --checkpoint runs/demo/model.safetensors \
		--prompt "Every effort moves you" --max-new-tokens 40 --temperature 0.8 --top-k 20

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py

lint: $(STAMP)
	$(BIN)/ruff check tinygrad_llm tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
