# waimai-bridge: set-up, checks and tests (GNU make).
#
#   make install    create .venv and install the project, its dev tools and the plugins
#   make run        run the main job
#   make test       run the test suite (PYTEST_ARGS='-k redis -x' passes options through)
#   make lint       ruff, ruff format --check, mypy and the contracts schema check
#   make mutation   mutation testing (mutmut) of the state machine, money, the action rules,
#                   store/ and pipeline/, then the kill rate of each against its target
#                   (MUTATE=waimai_bridge/money.py or MUTATE=waimai_bridge/store/ narrows it;
#                   it goes on from the recorded outcomes, MUTATION_FRESH=1 starts afresh)
#   make soak       the fault soak: SOAK_SECONDS (default 120) of pushes while a worker, Redis
#                   and PostgreSQL fail in turn, then SOAK_DRAIN (180) to settle
#                   (docs/reliability.md); SOAK_SECONDS=1800 by hand
#   make services   make sure the local PostgreSQL and Redis are up
#   make clean      remove the virtualenv, caches and build output

VENV   := .venv
BIN    := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP  := $(VENV)/.installed

PLUGINS            := eleme meituan own_pos
PLUGIN_DIRS        := $(addprefix plugins/,$(PLUGINS))
PLUGIN_PYPROJECTS  := $(addsuffix /pyproject.toml,$(PLUGIN_DIRS))

# The main job that `make run` starts: the demo (a lunch service through the embedded stack).
MAIN_JOB := $(BIN)/waimai-bridge demo

PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.DEFAULT_GOAL := install
.PHONY: install run test lint services clean mutation soak alerts

install: $(STAMP)

# One pip command for everything, so the resolver sees the root package and
# the plugins together. Reinstalls when any pyproject.toml changes.
$(STAMP): pyproject.toml $(PLUGIN_PYPROJECTS)
	@test -x $(PYTHON) || { echo "creating $(VENV)"; python3 -m venv $(VENV); }
	@echo "installing waimai-bridge[dev] and plugins ($(PLUGINS)) into $(VENV)"
	@$(PYTHON) -m pip install -q --upgrade pip
	@$(PYTHON) -m pip install -q -e '.[dev]' $(addprefix -e ,$(PLUGIN_DIRS))
	@touch $@

run: install
	$(MAIN_JOB)

test: install services
	$(PYTHON) -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --num-workers auto
	$(PYTHON) -m waimai_bridge.contracts --check
	$(PYTHON) deploy/grafana/dashboard.py --check

services:
	.ci/services

# The alert rules, their unit tests and the example scrape config, checked by promtool
# (.ci/promtool installs it).
alerts:
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml
	promtool check config deploy/prometheus/prometheus.yml

# The fault soak runs on a PostgreSQL cluster and a Redis server of its own (free ports, a
# temp folder), never the shared ones `make services` starts.
SOAK_SECONDS ?= 120
SOAK_DRAIN ?= 180

soak: install
	$(PYTHON) bench/soak.py --seconds $(SOAK_SECONDS) --drain $(SOAK_DRAIN)

# Mutation testing: [tool.mutmut] in pyproject.toml says what is mutated and with which
# tests; docs/testing.md explains the run and the survivors. A run goes on from the
# outcomes recorded in scripts/mutation-results.json (MUTATION_FRESH=1 starts afresh).
# The tests of one Redis db cannot run two at once: MUTATION_JOBS above 1 wants
# MUTATION_REDIS_URL= (empty), so that each test run claims a db of its own.
MUTATE             ?=
MUTATION_JOBS      ?= 1
MUTATION_REDIS_URL ?= redis://127.0.0.1:6379/13
MUTATION_FRESH     ?=
# mutmut names a mutant after its module: waimai_bridge/store/ -> waimai_bridge.store.*
MUTANT_GLOBS = $(foreach path,$(MUTATE),'$(subst /,.,$(patsubst %/,%,$(basename $(path)))).*')

mutation: install services
	$(if $(MUTATION_FRESH),rm -rf mutants,$(PYTHON) scripts/mutation_results.py restore)
	WAIMAI_TEST_REDIS_URL='$(MUTATION_REDIS_URL)' \
		$(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANT_GLOBS); \
		status=$$?; $(PYTHON) scripts/mutation_results.py save; exit $$status
	$(PYTHON) scripts/mutation_report.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
