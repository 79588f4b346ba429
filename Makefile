# Dry needling patient-education assistant.
#
#   make run    set everything up (venv, packages, spaCy pipeline, training data,
#               model) and start the bot on http://localhost:5005
#   make test   the same set-up, then lint, type checks and every test
#
# Each step is a file target, so a second run only redoes what changed.

SHELL := /bin/bash

# Rasa 3.6 needs Python 3.10 (it will not install on 3.11). Take the first
# candidate that really runs 3.10 (a pyenv shim on PATH may not), or pass
# PYTHON310=/path/to/python3.10.
ifndef PYTHON310
PYTHON310 := $(shell for p in $(HOME)/.pyenv/versions/3.10*/bin/python3.10 \
                  "$$(command -v python3.10)" /usr/local/bin/python3.10 /usr/bin/python3.10; do \
                  [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' \
                  2>/dev/null && { echo "$$p"; break; }; done)
endif

VENV    := .venv
PY      := $(VENV)/bin/python
RASA    := $(VENV)/bin/rasa
STAMP   := $(VENV)/.installed
SPACY   := build/spacy/en_dry_needling
MODEL   := models/dry-needling.tar.gz

# Everything the trained model depends on. A change to any of these retrains;
# nothing else does.
KNOWLEDGE  := $(wildcard knowledge/*.yml knowledge/topics/*.yml)
TRAIN_DATA := $(shell find data -name '*.yml' 2>/dev/null)
NLU_CODE   := $(wildcard assistant/nlu/*.py)
# The blind sets config.yml's models learn from, and the evaluation sets whose
# texts the intent model must never learn (unseen_sets).
BLIND_SETS := $(wildcard tests/dev*/*.yml tests/sealed/*.yml tests/nlu/*.yml)
DATA_STAMP := build/.training-data

export RASA_TELEMETRY_ENABLED := false
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help run test test-unit test-model test-services test-browser shell setup data model lint typecheck pytest browser axe services cluster report review coverage new-topic requests staff retention tune bench lock clean

run: setup model  ## set everything up and start the assistant on http://localhost:5005
	$(PY) -m assistant.ops.launcher

test: setup model lint typecheck pytest  ## set everything up, then lint, type checks and every test

shell: setup model  ## chat with the assistant in the terminal
	$(PY) -m assistant.ops.launcher --shell

setup: $(STAMP) $(SPACY)/meta.json $(DATA_STAMP)  ## virtualenv, locked packages, spaCy pipeline and training data

model: $(MODEL)  ## train the model (only when its inputs changed)

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt requirements.lock
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found. Install it (e.g. 'pyenv install 3.10') or pass PYTHON310=/path/to/python3.10"; exit 1; }
	test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.0"
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c requirements.lock
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt -c requirements.lock
	touch $@

# Our own spaCy pipeline (blank English + entity ruler), built from code because
# no model package can be downloaded here.
$(SPACY)/meta.json: $(STAMP) knowledge/conditions.yml assistant/kb/spacy_pipeline.py assistant/kb/knowledge.py
	$(PY) -m assistant.kb.spacy_pipeline --out $(SPACY)

# Training data generated from the knowledge base (committed; tests fail if they
# are stale). The builder rewrites a file only when its content changes, so an
# edit that doesn't change the training data (an answer of a condition, say)
# doesn't retrain the model.
$(DATA_STAMP): $(STAMP) $(KNOWLEDGE) clinic.yml assistant/kb/knowledge.py assistant/kb/build_data.py assistant/settings/clinic.py
	$(PY) -m assistant.kb.build_data
	@mkdir -p $(dir $@) && touch $@

data: $(DATA_STAMP)  ## rebuild the training data from knowledge/ and clinic.yml

$(MODEL): $(STAMP) $(SPACY)/meta.json $(DATA_STAMP) config.yml domain.yml $(TRAIN_DATA) $(NLU_CODE) $(BLIND_SETS)
	$(PY) -m assistant.ops.train   # rasa train, timed (models/dry-needling.training.json)
	touch $@

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)  ## mypy
	$(VENV)/bin/mypy

pytest: setup model browser axe services  ## every test group (what make test runs after lint and type checks)
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest $(PYTEST_ARGS)

# One group of tests at a time (markers in tests/conftest.py); each installs only
# what its group needs. PYTEST_ARGS="-k name" narrows further.
test-unit: setup  ## the unit tests alone: no model, no servers
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-model: setup model  ## the tests that load the trained model
	$(PY) -m pytest -m model $(PYTEST_ARGS)

test-services: setup model services  ## the tests that start real servers (Rasa, SMTP, PostgreSQL, Redis, nginx)
	$(PY) -m pytest -m services $(PYTEST_ARGS)

test-browser: setup model browser axe  ## the tests that drive Chromium
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -m browser $(PYTEST_ARGS)

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | \
	  awk -F'\t' '{ printf "  make %-14s %s\n", $$1, $$2 }'

# The widget's tests drive Debian's Chromium with Playwright (never a browser
# download). Installed here when missing; CHROMIUM=/path/to/chromium overrides.
CHROMIUM ?= /usr/bin/chromium
browser:  ## install Debian's Chromium if missing
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "Chromium not found at $(CHROMIUM); install Debian's 'chromium' package."; exit 1; }

# axe-core (npm) for the widget's accessibility scan, pinned and installed once
# into build/axe/ (needs npm); the tests inject it into the page, nothing is
# downloaded at test time.
AXE_VERSION := 4.10.3
AXE := build/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)  ## install axe-core (npm) for the accessibility test
$(AXE):
	@command -v npm >/dev/null || { echo "npm not found: install Debian's 'npm' package (axe-core for the accessibility test)."; exit 1; }
	npm install --prefix build/axe --no-audit --no-fund --no-save --silent axe-core@$(AXE_VERSION)
	@test -f $@ && touch $@

# PostgreSQL, Redis and nginx (Debian packages) for `make cluster` and the
# cluster's integration tests, which start their own servers from them.
SERVICE_BINARIES := /usr/sbin/nginx /usr/bin/redis-server
services:  ## install Debian's PostgreSQL, Redis and nginx if missing
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
	    ! ( for b in $(SERVICE_BINARIES); do test -x $$b || exit 1; done ); then \
	  echo "Installing Debian's postgresql, redis-server and nginx-light..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    postgresql redis-server nginx-light >/dev/null; \
	fi

# Several Rasa servers behind nginx, on PostgreSQL and Redis (README, Deployment).
# CLUSTER_SERVERS=2 CLUSTER_PORT=8080; POSTGRES_*/REDIS_* to use your own databases.
cluster: setup model services  ## several Rasa servers behind nginx on PostgreSQL and Redis
	$(PY) -m assistant.ops.cluster

# Staff: what patients asked, what the bot missed, how many went on to book
# (results/report/report.html + report.json). ARGS="--since 2026-11-01
# --until 2026-11-30", ARGS="--db postgresql://..." for the production store.
report: $(STAMP)  ## staff report: what patients asked, what was missed (results/report/)
	@$(PY) -m assistant.insights.cli report $(ARGS)

# Staff: the unanswered messages as Rasa NLU data to review (results/review/unanswered.yml).
review: $(STAMP)  ## the unanswered messages as NLU data to review (results/review/)
	@$(PY) -m assistant.insights.cli review $(ARGS)

# Which sentences of a folder of articles the knowledge base covers.
DOCS ?= ../shared/seeds
coverage: setup  ## which sentences of a folder of articles the knowledge base covers (DOCS=...)
	$(PY) -m assistant.kb.coverage $(DOCS)

# A topic of the clinic's own: writes knowledge/topics/$(TOPIC).yml, a commented
# template (rules: docs/knowledge-base.md). make new-topic TOPIC=cupping
new-topic: $(STAMP)  ## start a topic of the clinic's own (TOPIC=cupping)
	@$(PY) -m assistant.kb.new_topic $(TOPIC)

# Staff: list / export / close call-back requests (see assistant/callback_requests/cli.py).
requests: $(STAMP)  ## call-back requests on the command line (ARGS="list")
	@$(PY) -m assistant.callback_requests.cli $(ARGS)

# Staff console accounts: ARGS="add EMAIL", "list", "remove EMAIL", "reset EMAIL"
# (password from STAFF_PASSWORD, else asked for; see assistant/staff/cli.py).
staff: $(STAMP)  ## staff console accounts (ARGS="add EMAIL", list, remove, reset)
	@$(PY) -m assistant.staff.cli $(ARGS)

# Privacy: delete conversations and closed call-back requests older than
# retention_days (clinic.yml) or ARGS="--days N". Run it daily (cron).
retention: $(STAMP)  ## delete conversations and closed requests past retention_days
	@$(PY) -m assistant.ops.retention $(ARGS)

# Fallback thresholds: in-scope accuracy vs out-of-scope rejection on the
# held-out sets, for the thresholds in config.yml and the best candidates.
tune: setup model  ## fallback thresholds: accuracy against rejection on the held-out sets
	$(PY) -m assistant.quality.evaluation --sweep

# Speed and answer quality against a stock Rasa baseline, in one run (~4 min;
# ~11 when the baseline is trained on first use): results/bench/bench.{md,json,png}.
# ARGS="--quick" is a few-second smoke run of the project alone.
bench: setup model  ## speed and answer quality against a stock Rasa baseline (results/bench/)
	$(PY) -m assistant.quality.bench.run $(ARGS)

# Re-resolve and lock the dependency set after editing requirements*.txt.
lock: $(STAMP)  ## re-resolve and lock the dependencies after editing requirements*.txt
	(echo "# Full resolved dependency set (pip freeze) for Python 3.10. Regenerate with 'make lock'."; \
	 $(PY) -m pip freeze --exclude-editable) > requirements.lock

clean:  ## remove build outputs, models and results
	rm -rf build models results .pytest_cache .mypy_cache .ruff_cache
