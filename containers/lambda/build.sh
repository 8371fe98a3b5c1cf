#!/usr/bin/env bash
# Package the two Lambda functions (Pipeline-Orchestrator, Read-Validation-Result) for
# `aws cloudformation package`: the pipeline_tasks package and the pinned AWS SDK of requirements.txt.
# The runtime bundles a boto3, but maybe one older than the S3 conditional writes the orchestrator's lock uses
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included). The wheels are those
# of the python3.13 runtime on x86_64, whatever machine builds (pure Python today; the flags keep it so:
# https://repost.aws/knowledge-center/lambda-python-package-compatible). tests/infra/test_containers.py runs it.
# Usage: build.sh [FOLDER] (default containers/lambda/build, where infra/pipeline.yaml's Code points); PYTHON
# names the interpreter whose pip downloads the wheels (default python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$here/build}"
rm -rf "$build"
mkdir -p "$build"
"${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --target "$build" \
  --platform manylinux2014_x86_64 --implementation cp --python-version 3.13 --only-binary=:all: --no-compile \
  -r "$here/requirements.txt"
rm -rf "$build/bin"  # console scripts (jp.py) for the machine that built, not for Lambda
cp -r "$root/pipeline_tasks" "$build/"
find "$build" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "$build"
