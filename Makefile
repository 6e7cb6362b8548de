# The two commands of the README: `make book` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export COURSE_LIB_PROGRESS ?= 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book test unit notebooks exercises zoo benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)"
	touch $(STAMP)

# Build the HTML book into _build/html; warnings are errors.
book: setup
	$(VENV)/bin/jupyter-book build . --path-output . -W --keep-going

# The whole suite: unit and grader tests, nbval on every notebook of book/ and solutions/, the book build.
test: setup
	$(PY) -m pytest

# The fast unit tests (no kernels, no sandboxes, no DDP), on one thread: small operators run slower when
# two threads compete for the cores.
unit: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -m "not slow"

# Re-execute every committed notebook in place (after changing course_lib), then regenerate exercises.
notebooks: setup
	$(PY) -m course_lib.notebooks install-cells book solutions
	$(PY) -m course_lib.notebooks execute book solutions
	$(MAKE) exercises

exercises: setup
	$(PY) -m course_lib.grading generate solutions exercises

# Retrain the shipped reference models and replace their weights and manifest (maintainers; then commit
# course_lib/weights/ and run `make notebooks`).
zoo: setup
	$(PY) -m course_lib.zoo train all --ship

benchmark: setup
	$(PY) -m course_lib.benchmark --out book/data/benchmark.json

clean:
	rm -rf _build
