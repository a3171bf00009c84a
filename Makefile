# railsdeploy.aws — every entry point. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
# The venv's Python: Debian's python3.11 where the machine has it with its venv module (package python3.11-venv) -
# built with profile-guided and link-time optimisation, it runs Ansible about 6% and plain Python up to 30% faster
# than an interpreter built without them, as pyenv builds by default; else the first python3 on the PATH.
VENV_PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null && echo /usr/bin/python3.11 || echo python3)
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export RAILSDEPLOY_LAB_DIR := $(CURDIR)/lab
LABCTL := $(PY) lab/labctl.py
# What `make demo` deploys: the real Rails app (lab/images/railsapp, Rails from Debian's packages), published in the
# lab registry at lab-up; DEMO_APP=testapp deploys the test app the tests use instead.
DEMO_APP ?= railsapp
DEMO_RELEASE ?= 1
COLLECTION_LINK := build/collections/ansible_collections/railsdeploy/aws

.PHONY: help setup venv host images lab-up lab-down lab-status demo test lint role-docs unit integration molecule drills bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# uv installs the pinned requirements in parallel (about 45 s here, pip alone about 120 s: every test stage waits
# for the venv). Byte-compiled at install, as pip does: nothing else writes .pyc files when
# PYTHONDONTWRITEBYTECODE is set.
# Every distribution is checked against its hash (requirements-uv.txt, requirements.txt; made from requirements.in).
$(VENV)/.installed: requirements.txt requirements-uv.txt
	$(VENV_PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-uv.txt
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --compile-bytecode --require-hashes -r requirements.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

venv: $(VENV)/.installed $(COLLECTION_LINK)

host:
	scripts/setup-host.sh

# The machine's own Python is enough (labctl's image build needs only the standard library): `make test` builds
# the images while the venv installs.
images: host
	python3 lab/labctl.py build-images

setup: venv host images  ## Python venv, Docker daemon, lab images (only what is missing or stale)

lab-up: setup  ## Start the lab: moto, VPC, Docker network, registry, balancer
	$(LABCTL) up

lab-down: venv  ## Remove every container, network, loop device and file of the lab
	$(LABCTL) down

lab-status: venv  ## What the lab runs
	$(LABCTL) status

demo: lab-up  ## Bring up the whole system in the lab and deploy the app (a real Rails app)
	ansible-playbook playbooks/site.yml -e rails_app_release=$(DEMO_RELEASE) \
	  -e 'railsdeploy_app_image={{ railsdeploy_registry }}/$(DEMO_APP)'
	@url="$$($(LABCTL) env | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["balancer_url"])')"; \
	for i in $$(seq 60); do curl -fsS -o /dev/null "$$url/up" && break; sleep 1; done; \
	page="$$(curl -fsS "$$url/")"; rails="$$(grep -o 'Rails [0-9.]*[0-9]' <<<"$$page" | head -1)"; \
	notes="$$(grep -o '[0-9]* notes* in PostgreSQL' <<<"$$page" | head -1)"; \
	echo "Open $$url/ - release $$(curl -fsS "$$url/version") of $(DEMO_APP) serves behind the lab balancer$${rails:+ ($$rails, $$notes)}"

lint: venv  ## ansible-lint (production profile), ansible-test sanity, ruff
	@# Its syntax checks need no hosts: an empty inventory, not the lab's (unreadable while the lab is down, and a
	@# query of the lab's cloud per playbook while it is up).
	ANSIBLE_INVENTORY=/dev/null ANSIBLE_INVENTORY_ENABLED=ansible.builtin.ini ansible-lint
	tests/sanity/run.sh
	tests/build/check_build.sh
	ruff check .

role-docs: venv  ## Each role's README.md: the entry points and variables, from its meta/argument_specs.yml
	python scripts/role_docs.py

unit: venv  ## Unit tests (no lab needed)
	pytest tests/unit --durations=10

# The lab stages run through scripts/test.py: one lab for all of them, up once and down once (also on failure),
# a table of the stages and their seconds at the end.
integration: setup  ## Lab tests: materialisation and the balancer follow moto; playbooks against their own moto
	python3 scripts/test.py integration

molecule: setup  ## Molecule scenarios, one after another on one lab
	python3 scripts/test.py molecule

drills: setup  ## Failure drills under client load in the lab; writes docs/drills.md
	python3 scripts/test.py drills

test: host  ## Everything CI runs, on one lab, lint and unit tests beside the lab stages; a table of stage seconds (TEST_ARGS=--keep-going)
	python3 scripts/test.py $(TEST_ARGS)

bench: setup  ## Benchmarks under bench/
	$(PY) bench/run.py

clean: lab-down  ## Lab down and build outputs removed (images are kept as a cache)
	rm -rf build .cache
