# Two commands set everything up on a fresh machine with Python 3.11:
#   make run    create the locked environment with uv, then run the pipeline (dvc repro)
#   make test   lint, type-check and test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen

# No telemetry from any tool, and no download of a Python interpreter behind our back.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export UV_PYTHON_DOWNLOADS := never
# Bytecode compiled once at install: every DVC stage, notebook kernel and CLI call is a new
# process, and where PYTHONDONTWRITEBYTECODE is set (CI images) each would otherwise compile
# mlflow and great_expectations from source again (imports 2-3x slower, measured).
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint typecheck unit lab ui serve bench dag experiments plots help
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.venv/.synced: uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --python "$(PYTHON)"
	@touch $@

run: .venv/.synced ## run the whole pipeline on the data set in params.yaml (default: generator)
	$(RUN) itsm-ml registry-sync
	$(RUN) dvc repro
	@echo; $(RUN) itsm-ml summary

lint: .venv/.synced
	$(RUN) ruff check src tests pipelines bench
	$(RUN) ruff format --check src tests pipelines bench

typecheck: .venv/.synced
	$(RUN) mypy src

unit: .venv/.synced
	$(RUN) pytest -n 2 --dist loadfile tests --nbmake notebooks

test: lint typecheck unit ## ruff, mypy and the whole test suite (notebooks included)

# No browser is opened (servers and containers have none): the log prints the URL with its
# token. Jupyter refuses to run as root, which CI and many containers are, without --allow-root.
lab: .venv/.synced ## JupyterLab on the project's environment (open the URL it prints)
	$(RUN) jupyter lab --notebook-dir=notebooks --no-browser $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

ui: .venv/.synced ## MLflow UI on the project's tracking store (one worker: 2 cores)
	$(RUN) mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" --workers 1

serve: .venv/.synced ## the scoring service on http://127.0.0.1:8080 (docs at /docs); HOST=, PORT= to change
	$(RUN) itsm-ml serve --host "$${HOST:-127.0.0.1}" --port "$${PORT:-8080}"

bench: .venv/.synced ## benchmarks on the real datasets (adds the `bench` group: Evidently), written to reports/benchmarks.md
	@test -n "$$ITSM_ML_DATASETS" || { echo "set ITSM_ML_DATASETS to the folder of the public datasets (e.g. ../shared/datasets)"; exit 2; }
	$(RUN) python bench/ingest_validate.py --out reports/bench/ingest_validate.md
	$(RUN) python bench/triage.py --out reports/bench/triage.md
	$(RUN) python bench/change_risk.py --out reports/bench/change_risk.md
	$(RUN) python bench/knowledge.py --out reports/bench/knowledge.md
	$(RUN) python bench/knowledge_speed.py --out reports/bench/knowledge_speed.md
	$(RUN) python bench/early_warning.py --out reports/bench/early_warning.md
	$(RUN) python bench/incident_volume.py --out reports/bench/incident_volume.md
	$(RUN) python bench/early_warning_speed.py --out reports/bench/early_warning_speed.md
	$(RUN) python bench/problem_grouping.py --out reports/bench/problem_grouping.md
	$(RUN) python bench/problem_candidates.py --out reports/bench/problem_candidates.md
	$(RUN) --group bench python bench/drift.py --out reports/bench/drift.md
	$(RUN) python bench/serving.py --out reports/bench/serving.md
	$(RUN) python bench/scoring_speed.py --out reports/bench/scoring_speed.md
	$(RUN) python bench/batch_scoring.py --out reports/bench/batch_scoring.md
	@{ echo "# Benchmarks"; echo; echo "Measured by \`make bench\`; each section names its command and machine."; echo; \
	   cat reports/bench/ingest_validate.md; echo; cat reports/bench/triage.md; echo; \
	   cat reports/bench/change_risk.md; echo; cat reports/bench/knowledge.md; echo; \
	   cat reports/bench/knowledge_speed.md; echo; \
	   cat reports/bench/early_warning.md; echo; cat reports/bench/incident_volume.md; echo; \
	   cat reports/bench/early_warning_speed.md; echo; cat reports/bench/problem_grouping.md; echo; \
	   cat reports/bench/problem_candidates.md; echo; \
	   cat reports/bench/drift.md; echo; \
	   cat reports/bench/serving.md; echo; cat reports/bench/scoring_speed.md; echo; \
	   cat reports/bench/batch_scoring.md; } > reports/benchmarks.md
	@echo "wrote reports/benchmarks.md"

experiments: .venv/.synced ## the DVC experiments side by side: changed params, each model's metric, baseline, gate
	$(RUN) itsm-ml experiments

dag: .venv/.synced ## show the pipeline
	$(RUN) dvc dag

# The figures the last run wrote, whatever models the catalog holds. Images only: DVC's page
# then loads no script, where its CSV (vega) plots would fetch vega from a CDN.
FIGURES = $(wildcard reports/data/*.png reports/models/*/evaluation/*.png reports/drift/*/timeline.png)

plots: .venv/.synced ## every figure of the last run on one page, dvc_plots/index.html (no network needed)
	@test -n "$(FIGURES)" || { echo "no figures under reports/ yet: make run writes them"; exit 2; }
	$(RUN) dvc plots show --out dvc_plots $(FIGURES)
