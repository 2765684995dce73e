# commons.infra: `make demo` brings up the local lab and converges it,
# `make test` runs every check (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/pypath
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
export COMMONS_INFRA_LAB_KEY := $(CURDIR)/.cache/lab/admin_ed25519.pub

.PHONY: all venv collection lab test lint sanity units importer molecule demo demo-down bench release docs clean

all: test

$(VENV)/.stamp: requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp collection

# The checkout is the collection: expose it as ansible_collections/commons/infra.
collection:
	@mkdir -p .cache/pypath/ansible_collections/commons
	@ln -sfn $(CURDIR) .cache/pypath/ansible_collections/commons/infra

lab: venv
	@scripts/lab/docker-engine.sh
	@scripts/lab/base-image.sh
	@scripts/lab/admin-key.sh

test: venv
	@scripts/test/run-all.sh

lint: venv
	@scripts/test/lint.sh

sanity: venv
	@scripts/test/sanity.sh

units: venv
	@$(BIN)/pytest tests/unit -q

importer: venv
	@scripts/test/importer.sh

# One scenario: make molecule SCENARIO=memcached [MOLECULE_COMMAND=converge]
molecule: lab
	@scripts/test/scenario.sh $(or $(SCENARIO),memcached) $(or $(MOLECULE_COMMAND),test)

demo: lab
	@scripts/demo.sh up

demo-down: venv
	@scripts/demo.sh down

bench: lab
	@scripts/bench.sh

# The changelog for galaxy.yml's version (fragments consumed: commit the result), the
# tarball in dist/ and the execution environment's build context (dist/ee-context).
release: venv
	@scripts/release.sh

# The docs site, static HTML in dist/docs/ (offline, warnings as errors).
docs: venv
	@scripts/docs.sh

clean:
	rm -rf .cache tests/output *.tar.gz
