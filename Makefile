# Confidential Cat Counter — every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PY_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
ESDK_CLI_VENV := .venv-esdk-cli
ENCLAVE_DIST := enclave_worker/enclave
ENCLAVE_VENV := .venv-enclave
ENCLAVE_STAMP := $(ENCLAVE_VENV)/.installed
MODEL := models/nanodet-g.onnx
WEB_STAMP := web/dist/.built
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup venv enclave-venv enclave-wheels enclave-bundle model test test-unit test-integration test-e2e test-infra lint demo bench fuzz chaos synth cost-docs clean help web

help:
	@echo "make demo   - set up, start the local stack, count cats through the encrypted pipeline"
	@echo "make test   - set up, then lint and run every test tier"
	@echo "make bench  - benchmarks (JSON + human output)"
	@echo "make fuzz   - property tests with random seeds and 20x the examples (make test runs them derandomised)"
	@echo "make chaos  - faults against a local stack (duplicates, kills, slow enclave, 1000 jobs); CHAOS_JOBS=N"
	@echo "make synth  - synthesise the CDK app offline (cdk.out/)"
	@echo "make cost-docs - regenerate docs/deploy.md's cost tables (ccc cost idle / simulate)"
	@echo "make enclave-bundle - the EIF's input: build/enclave/bundle.tar + release.json (deterministic)"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml $(ENCLAVE_DIST)/pyproject.toml
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -r requirements-dev.txt 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q --no-deps -e $(ENCLAVE_DIST) -e . 2>&1 | grep -vi -e "is ignored" -e warning -e "^ *$$" -e "!!" -e "\*\*\*" || true
	$(PY) -c "import ccc, ccc_common, ccc_core, ccc_enclave, enclave_worker.parent, functions, cdk, onnxruntime, aws_encryption_sdk, aws_cdk"
	touch $(STAMP)

venv: $(STAMP)

# The enclave's own environment: its distribution and its pinned requirements, nothing else. The
# local stack runs every enclave process with this interpreter, so an import the EIF would lack
# fails here too. The distribution is installed editable, so the code is the checkout's.
$(ENCLAVE_STAMP): $(ENCLAVE_DIST)/requirements.txt $(ENCLAVE_DIST)/pyproject.toml
	test -x $(ENCLAVE_VENV)/bin/python || $(PY_BOOT) -m venv $(ENCLAVE_VENV)
	$(ENCLAVE_VENV)/bin/pip install -q --no-deps -r $(ENCLAVE_DIST)/requirements.txt 2>&1 | grep -v "is ignored" || true
	$(ENCLAVE_VENV)/bin/pip install -q --no-deps -e $(ENCLAVE_DIST) 2>&1 | grep -vi -e "is ignored" -e warning -e "^ *$$" || true
	$(ENCLAVE_VENV)/bin/pip check
	cd / && $(CURDIR)/$(ENCLAVE_VENV)/bin/python -s -c "import ccc_enclave.__main__, ccc_enclave.relay, ccc_enclave.counting"
	touch $@

enclave-venv: $(ENCLAVE_STAMP)

# The official ESDK CLI pins aws-encryption-sdk 3.x, so it lives in its own venv (compatibility tests).
$(ESDK_CLI_VENV)/.installed:
	test -x $(ESDK_CLI_VENV)/bin/python || $(PY_BOOT) -m venv $(ESDK_CLI_VENV)
	$(ESDK_CLI_VENV)/bin/pip install -q aws-encryption-sdk-cli==4.3.0 2>&1 | grep -v "is ignored" || true
	$(ESDK_CLI_VENV)/bin/aws-encryption-cli --version
	touch $@

$(MODEL): $(STAMP) $(wildcard src/ccc/model/*.py)
	$(PY) -m ccc.model.build --out-dir models --cache-dir .cache/npm --force

model: $(MODEL)

# The enclave's wheels for the EIF's platform (CPython 3.11 manylinux x86_64), downloaded once into
# a cache; bundle builds and the bundle tests then select from it offline (ccc.release.wheelhouse).
ENCLAVE_WHEEL_CACHE := .cache/enclave-bundle
$(ENCLAVE_WHEEL_CACHE)/.fetched: $(STAMP) $(ENCLAVE_DIST)/requirements.txt src/ccc/release/wheelhouse.py
	$(PY) -m ccc.release fetch --cache-dir $(ENCLAVE_WHEEL_CACHE)
	touch $@

enclave-wheels: $(ENCLAVE_WHEEL_CACHE)/.fetched

# build/enclave/bundle.tar (all the EIF is built from) and its manifest release.json; two runs on
# the same sources give the same bytes. enclave_worker/build_eif.sh runs the same command.
enclave-bundle: $(STAMP) $(MODEL) $(ENCLAVE_WHEEL_CACHE)/.fetched
	$(PY) -m ccc.release build --out-dir build/enclave --cache-dir $(ENCLAVE_WHEEL_CACHE)

setup: $(STAMP) $(ENCLAVE_STAMP) $(MODEL) $(ESDK_CLI_VENV)/.installed $(ENCLAVE_WHEEL_CACHE)/.fetched $(WEB_STAMP)

# The browser client (web/): Debian's chromium for its browser tests, the npm packages from the
# lockfile, the esbuild bundle the local stack serves. Nothing downloads a browser build.
web: $(WEB_STAMP)
$(WEB_STAMP): web/package-lock.json web/package.json web/build.mjs web/index.html $(shell find web/src -name '*.ts')
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm)
	cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check src layers functions enclave_worker cdk tests app.py
	$(VENV)/bin/mypy src layers functions enclave_worker cdk app.py
	$(VENV)/bin/lint-imports

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-integration: setup
	$(PY) -m pytest -q tests/integration

test-infra: setup
	$(PY) -m pytest -q tests/infra

test-e2e: setup
	$(PY) -m pytest -q tests/e2e

test: setup lint
	$(PY) -m pytest -q -n 2 --dist loadfile --hypothesis-profile=ci tests/unit tests/integration tests/infra tests/web
	$(PY) -m pytest -q tests/e2e

demo: setup
	$(PY) -m ccc.demo

bench: setup
	$(VENV)/bin/ccc bench count --out bench-results/count.json
	$(VENV)/bin/ccc bench coldstart --out bench-results/coldstart.json
	$(VENV)/bin/ccc bench pipeline --out bench-results/pipeline.json

# Not part of `make test`: a bounded run (< 10 min) of duplicate deliveries, process kills, a slow
# enclave and a CHAOS_JOBS-job load with 10 % bad images; exit 1 on any lost, torn,
# double-visible or unexpected job (ccc.evaluation.chaos).
CHAOS_JOBS ?= 1000
# Property tests with random seeds and 20x the examples (tests/conftest.py's "fuzz" profile); `make
# test` runs them derandomised so CI's verdict does not depend on the seed of the day.
fuzz: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --hypothesis-profile=fuzz --hypothesis-show-statistics tests/unit tests/integration

chaos: $(STAMP) $(ENCLAVE_STAMP) $(MODEL)
	$(PY) -m ccc.evaluation.chaos --jobs $(CHAOS_JOBS) --json-out bench-results/chaos.json

synth: $(STAMP)
	$(PY) app.py

# docs/deploy.md's cost tables, regenerated from templates of each stage in each network mode
# (tests/infra/test_cdk_cost.py fails when the guide and the templates disagree).
COST_DIR := build/cost
COST_DEV := {"stage": "dev", "measurements": "enclave_worker/measurements.placeholder.json"
COST_PROD := {"stage": "prod", "measurements": "tests/fixtures/infra/measurements.json", "tenants": [{"name": "acme", "account": "111111111111", "key_arn": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", "principals": ["arn:aws:iam::111111111111:role/acme-client"]}]
cost-docs: $(STAMP)
	rm -rf $(COST_DIR)
	CDK_OUTDIR=$(COST_DIR)/dev-public CDK_CONTEXT_JSON='$(COST_DEV), "network": "public"}' $(PY) app.py 2>/dev/null
	CDK_OUTDIR=$(COST_DIR)/dev-endpoints CDK_CONTEXT_JSON='$(COST_DEV), "network": "endpoints"}' $(PY) app.py 2>/dev/null
	CDK_OUTDIR=$(COST_DIR)/prod-public CDK_CONTEXT_JSON='$(COST_PROD), "network": "public"}' $(PY) app.py
	CDK_OUTDIR=$(COST_DIR)/prod-endpoints CDK_CONTEXT_JSON='$(COST_PROD), "network": "endpoints"}' $(PY) app.py
	$(VENV)/bin/ccc cost docs --write docs/deploy.md \
	  --column "dev, public=$(COST_DIR)/dev-public/CccDev.template.json" \
	  --column "dev, endpoints=$(COST_DIR)/dev-endpoints/CccDev.template.json" \
	  --column "prod, public=$(COST_DIR)/prod-public/CccProd.template.json" \
	  --column "prod, endpoints=$(COST_DIR)/prod-endpoints/CccProd.template.json" \
	  --simulate "sparse=$(COST_DIR)/dev-public/CccDev.template.json" \
	  --simulate "office-hours=$(COST_DIR)/dev-public/CccDev.template.json" \
	  --simulate "sparse=$(COST_DIR)/prod-endpoints/CccProd.template.json" \
	  --simulate "office-hours=$(COST_DIR)/prod-endpoints/CccProd.template.json"

clean:
	rm -rf $(VENV) $(ENCLAVE_VENV) $(ESDK_CLI_VENV) cdk.out models/*.onnx models/*.json .ccc build *.egg-info
