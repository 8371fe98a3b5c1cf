# ecom-pipeline: `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars
STAMP := $(VENV)/.setup-stamp
JARS_STAMP := $(JARS)/.stamp
OUT ?= out/demo

.DEFAULT_GOAL := help
.PHONY: help setup demo lab test test-fast lint bench bench-notebooks bench-flow notebook-outputs lambda-package clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

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

setup: $(STAMP) $(JARS_STAMP) ## install Python packages (.venv) and the Spark jars (.jars); quick when done

demo: setup ## run the whole pipeline locally on the sample batches and print the KPIs
	$(VENV)/bin/ecom-pipeline local run samples/batch_01 samples/batch_02 --out $(OUT)

lab: setup ## JupyterLab on notebooks/ against a local stack seeded with the samples (LAB_ARGS=--aws for AWS)
	$(VENV)/bin/ecom-pipeline lab $(LAB_ARGS)

test: setup ## run the full test suite
	$(VENV)/bin/pytest

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

notebook-outputs: setup ## re-execute the explore notebooks on a seeded stack (nbval's committed outputs)
	$(VENV)/bin/ecom-pipeline lab --refresh-outputs

lambda-package: ## the Lambda code (containers/lambda/build) that `aws cloudformation package` uploads
	bash containers/lambda/build.sh

clean: ## remove the virtualenv, jars and outputs
	rm -rf $(VENV) $(JARS) out
