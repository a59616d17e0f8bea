# The two commands of the quick start: `make demo` and `make test`. Each sets up its own
# virtual environment in .venv on first use (and again only when pyproject.toml changes);
# `make lint` (and so `make test`) also sets up .venv-tools for checkov on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.swr-setup-done
TEMPLATE := infra/template.yaml
# checkov pins its own boto3, pydantic and more, which clash with the project's (and moto's):
# it gets a virtual environment of its own. Changing the version re-creates its stamp.
CHECKOV_VERSION := 3.3.30
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.checkov-$(CHECKOV_VERSION)
# The report's browser test opens the page it writes in headless Chromium (Debian's package).
CHROMIUM := /usr/bin/chromium
SCENARIO ?= rms-fault
DEMO_ARGS ?=

.PHONY: demo demo-all test lint format setup clean campaign

demo: $(STAMP)
	$(BIN)/swr demo --scenario $(SCENARIO) $(DEMO_ARGS)

# Every scenario, one after the other. All recover but az-api-down, which fails closed by
# design (exit 1: no API call about its AZ answers, so nothing proves the old instance cut off).
RECOVERING := rms-fault instance-failure az-outage hung-instance slow-shutdown terminate-refused shared-subnet
demo-all: $(STAMP)
	for scenario in $(RECOVERING); do $(BIN)/swr demo --scenario $$scenario || exit 1; done
	$(BIN)/swr demo --scenario az-api-down; test $$? -eq 1

# One worker per core; a test module stays on one worker (its module fixtures build once).
# Modules go out in collection order, so the campaign's two halves (tests/campaign, the longest
# by far) start first, one per worker, and the rest fills in around them: xdist's default order
# (most tests first) would start them last and leave one worker idle at the end.
test: lint $(CHROMIUM)
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder

# The fault campaign beyond CI's fixed seeds: the table of outcomes by fault band and scenario,
# and every violation with the command that replays its seed.
SEEDS ?= 1000
JOBS ?= 2
campaign: $(STAMP)
	$(BIN)/python bench/campaign.py --seeds $(SEEDS) --jobs $(JOBS)

# The template checks run offline: checkov downloads no guidelines, cfn-lint ships its specs.
lint: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/cfn-lint $(TEMPLATE)
	$(TOOLS_VENV)/bin/checkov -f $(TEMPLATE) --framework cloudformation --skip-download --compact --quiet

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

setup: $(STAMP)

# The stamp is newer than pyproject.toml once the install succeeded; a failed install leaves
# no stamp, so the next run tries again.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "swr needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@echo "setting up $(VENV): swr and its test tools from PyPI (pip install -e '.[dev]'; a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e '.[dev]' \
		| { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; }
	touch $(STAMP)

$(TOOLS_STAMP):
	@echo "setting up $(TOOLS_VENV): checkov $(CHECKOV_VERSION) from PyPI, for the template checks"
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	rm -f $(TOOLS_VENV)/.checkov-*
	touch $(TOOLS_STAMP)

# A fresh CI machine (Debian, as root) has no browser: install it once, the binary is the stamp;
# with its recommended packages, which bring the fonts the page is drawn with.
# Only `make test` needs it, not `make demo`.
$(CHROMIUM):
	@command -v apt-get >/dev/null || \
		{ echo "the report's browser test needs $(CHROMIUM): install Chromium (Debian: apt-get install chromium)" >&2; exit 1; }
	@echo "installing Chromium with apt-get (Debian's package and the fonts it recommends, about 130 packages;"
	@echo "needs root), for the report's browser test; only make test needs it"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info rms_hooks/build rms_hooks/*.egg-info
