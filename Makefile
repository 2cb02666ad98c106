# The two commands of the README, each doing its own set-up on a fresh clone:
#   make demo   the main job: train and evaluate the CPU demo suite (smoke, two CPU workers), then its report
#   make test   the test suite
# and the study of the README's "paper in miniature":
#   make mini   the FastGAN paper's claims over 3 seeds (suite mini, two CPU workers), then its report
# Both first run scripts/setup.sh when .venv is missing or older than what it installs
# (torch, the project, its test tools, the effnet-lite0 weights, the emoji font). No activated venv needed.

PY := .venv/bin/python
# written by scripts/setup.sh when it finishes
SETUP := .venv/.setup-done

.PHONY: demo test setup mini

demo: $(SETUP)
	$(PY) run_bench.py --suite smoke --devices cpu,cpu
	$(PY) run_bench.py report --suite smoke

test: $(SETUP)
	$(PY) -m pytest -q -n auto --dist loadfile   # one worker per CPU; a test file's tests share one worker

mini: $(SETUP)
	$(PY) run_bench.py --suite mini --devices cpu,cpu
	$(PY) run_bench.py report --suite mini

setup: $(SETUP)

$(SETUP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
