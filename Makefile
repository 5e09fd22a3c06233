# Two commands take a fresh clone to a trained model:
#   make install   # .venv with the verified OpenMMLab stack (idempotent)
#   make test      # the test suite, as CI runs it
# and `make demo` trains DFA on generated tissue images in a few minutes.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmimb-installed
PYTEST_ARGS ?=

.PHONY: install test test-all demo clean-venv

install: $(STAMP)

# Re-run only when the environment or the dependency list changed.
$(STAMP): pyproject.toml tools/install_env.sh
	bash tools/install_env.sh $(VENV)
	touch $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PYTHON) tools/demo.py

clean-venv:
	rm -rf $(VENV)
