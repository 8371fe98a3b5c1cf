#!/usr/bin/env bash
# Package the two Lambda functions (Pipeline-Orchestrator, Read-Validation-Result) for
# `aws cloudformation package`: the pipeline_tasks package alone. Their handlers need only
# boto3, which the python3.11 runtime provides (tests/infra/test_containers.py checks it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/containers/lambda/build"
rm -rf "$build"
mkdir -p "$build"
cp -r "$root/pipeline_tasks" "$build/"
find "$build" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "$build"
