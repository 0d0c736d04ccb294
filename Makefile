# make demo  - set up and run the demo on http://127.0.0.1:8000 (or the next free port;
#              PORT=8123 make demo picks one): SQLite, and a Celery worker on a broker made of
#              files under var/ (no Redis); scripts/demo.sh
# make test  - set up and run the whole test suite against PostgreSQL and Redis
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The tests need everything; the demo (the web app) needs no torch.
EXTRAS ?= dev,modeling

# Test environment: real PostgreSQL and Redis on this machine; plain HTTP on localhost.
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/humanbeauty} \
	CELERY_BROKER_URL=$${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	SECRET_KEY=test-only-not-secret HTTPS=0 DEBUG=0

.PHONY: setup demo test lint services check-deploy clean

setup:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"

demo:
	$(MAKE) setup EXTRAS=dev
	PY=$(PY) bash scripts/demo.sh

services:
	bash scripts/ensure_services.sh

test: setup services
	$(PY) -m ruff check .
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .

# Django's deployment checklist with production-like settings.
check-deploy: setup
	DEBUG=0 SECRET_KEY=$$(openssl rand -hex 40) ALLOWED_HOSTS=example.org $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var .pytest_cache
