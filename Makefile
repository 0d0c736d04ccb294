# make demo  - set up and run the demo (SQLite, tasks in-process) on http://127.0.0.1:8000
#              (or the next free port; PORT=8123 make demo picks one)
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
DEMO_ENV := DEBUG=1 DATABASE_URL= CELERY_BROKER_URL= IMPORT_ROOTS=$(CURDIR)/var/imports \
	JOBS_IN_BACKGROUND_THREAD=1

.PHONY: setup demo test lint services check-deploy clean

setup:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"

demo:
	$(MAKE) setup EXTRAS=dev
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$$($(PYTHON) scripts/free_port.py $${PORT:-8000})

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
