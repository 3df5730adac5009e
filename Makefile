# FeedbackHub: `make run` serves the demo on http://127.0.0.1:8000, `make test` runs the suite.
# Both create .venv and install the pinned requirements first (again only when they change).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k api -x"`.
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` / `make test-fast` (one test database per worker:
# test_<name>_gw0, _gw1, … on PostgreSQL); `make test XDIST=0` runs in one process.
XDIST ?= auto
# What `make test-fast` leaves out: the browser, the live-server clients (mlflow, OpenTelemetry),
# fuzzing and property tests, and the failure tests of `make reliability`.
FAST_MARKERS ?= not browser and not live and not fuzz and not reliability

.PHONY: venv run test test-fast

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py load_demo
	@echo "Serving on http://$(HOST):$(PORT)/ (admin at /admin/, API docs at /api/docs/). Ctrl-C stops."
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The whole suite (browser, live clients and fuzzing included), in parallel.
test: venv
	$(BIN)/pytest --create-db -n $(XDIST) $(PYTEST_ARGS)

# The quick loop while working: everything but the slow kinds above, in parallel.
test-fast: venv
	$(BIN)/pytest -q -n $(XDIST) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# Production serving (gunicorn + whitenoise, settings in gunicorn.conf.py) on PostgreSQL.
# DATABASE_URL defaults to a local `feedbackhub` database (created when missing). Plain HTTP on
# loopback by default; behind a TLS proxy set DJANGO_SECURE_SSL_REDIRECT/DJANGO_SECURE_COOKIES=true
# and DJANGO_BEHIND_TLS_PROXY=true. Without DJANGO_SECRET_KEY a random key is kept in .secret_key.
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/feedbackhub
# Extra arguments for bench/run.py, e.g. `make bench BENCH_ARGS="--quick"`.
BENCH_ARGS ?=
# Extra arguments for bench/queues.py (review queues: next and answer with 10 reviewers at once).
BENCH_QUEUES_ARGS ?=
# Extra arguments for bench/export.py (exports at 1M assessments, purge under load); --quick follows BENCH_ARGS.
EXPORT_BENCH_ARGS ?= $(filter --quick,$(BENCH_ARGS))

.PHONY: serve bench

serve: venv
	@test -s .secret_key || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > .secret_key
	export DATABASE_URL="$${DATABASE_URL:-$(SERVE_DATABASE_URL)}" \
		DJANGO_DEBUG=false \
		DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat .secret_key)}" \
		DJANGO_SECURE_SSL_REDIRECT="$${DJANGO_SECURE_SSL_REDIRECT:-false}" \
		DJANGO_SECURE_COOKIES="$${DJANGO_SECURE_COOKIES:-false}" \
		DJANGO_HSTS_SECONDS="$${DJANGO_HSTS_SECONDS:-0}" \
		GUNICORN_BIND="$${GUNICORN_BIND:-$(HOST):$(PORT)}" && \
	$(BIN)/python bench/ensure_database.py && \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0 && \
	exec $(BIN)/gunicorn -c gunicorn.conf.py feedbackhub.wsgi

# The full mlflow 3.18.0 client in its own virtualenv (see requirements-mlflow.txt for why it is
# installed without dependencies); tests/mlflow/test_full_mlflow_client.py runs it when present.
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed

.PHONY: mlflow-venv lint
mlflow-venv: $(MLFLOW_STAMP)

$(MLFLOW_STAMP): requirements-mlflow.txt
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-mlflow.txt
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps mlflow==3.18.0
	touch $(MLFLOW_STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The slow failure tests of issue 6 (docs/RELIABILITY.md): gunicorn SIGKILLed mid-load, PostgreSQL
# stopped mid-load, a backup under load. They start their own PostgreSQL (initdb in a temporary
# folder, own port; as root it runs as the postgres user) and never touch a shared server.
# About 1.5 minutes on two cores. Figures: the "reliability figures" section of the output.
.PHONY: reliability
reliability: venv
	FEEDBACKHUB_RELIABILITY=1 $(BIN)/pytest tests/reliability -m reliability $(PYTEST_ARGS)

# The benchmark of issue 5 (docs/PERFORMANCE.md): generated data, gunicorn, wrk, pgbench.
bench: venv
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	command -v pgbench >/dev/null || apt-get install -y postgresql-client || (apt-get update && apt-get install -y postgresql-client)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/queues.py $(BENCH_QUEUES_ARGS)
	$(BIN)/python bench/export.py $(EXPORT_BENCH_ARGS)
