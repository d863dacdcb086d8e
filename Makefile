# The two commands of README.md. Both install whatever is missing (scripts/install.sh,
# idempotent) and run in one Python: an active virtualenv / conda environment, else python3,
# else - when python3 is externally managed (PEP 668, e.g. Debian's and Ubuntu's system
# python3) - the project environment .venv, created once and reused (scripts/select_python.sh).
# `make PYTHON=/path/to/python ...` picks the Python yourself.
ifeq ($(origin PYTHON), undefined)
PYTHON := $(shell sh scripts/select_python.sh python3)
endif
ifeq ($(strip $(PYTHON)),)
$(error no usable Python (see the message above); activate an environment or pass PYTHON=/path/to/python)
endif
export PYTHON

.PHONY: install test demo
install:
	bash scripts/install.sh

# the suite runs in TEST_WORKERS pytest-xdist processes (default 2: most tests drive one-thread
# fairseq CLIs, so two workers keep two cores busy); TEST_WORKERS=0 runs it in this process.
# It ends with its 15 slowest tests (the suite should stay under ~15 min on 2 cores).
TEST_WORKERS ?= 2
test: install
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --durations=15 tests

demo: install
	$(PYTHON) scripts/demo.py $(if $(CORPUS),--corpus "$(CORPUS)")
