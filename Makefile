# mmseg-cells: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.mmseg_cells-installed
DATA  ?=
OUT   ?= demo_out

.PHONY: install demo test clean-venv

install: $(STAMP)

# Reinstalls (idempotently, seconds with the cached mmcv wheel) when the
# dependency set or the installer changes.
$(STAMP): pyproject.toml tools/install.sh tools/check_build_env.py requirements/constraints.txt
	VENV="$(abspath $(VENV))" bash tools/install.sh

demo: $(STAMP)
	DATA="$(DATA)" OUT="$(OUT)" PYTHON="$(abspath $(PY))" bash tools/demo.sh

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
