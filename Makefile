# The two commands of README.md. Both install whatever is missing into the active Python
# (override with PYTHON=/path/to/python) and are idempotent.
PYTHON ?= python3
export PYTHON

.PHONY: install test demo
install:
	bash scripts/install.sh

test: install
	$(PYTHON) -m pytest -q tests

demo: install
	$(PYTHON) scripts/demo.py
