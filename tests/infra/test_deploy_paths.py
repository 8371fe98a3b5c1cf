"""The deploy paths from an empty account (docs/deploy.md): the GitHub OIDC trust, the bootstrap stack, the image
platform, pushes that skip tags already in ECR, the roll-back and the printed plan.

The Make targets run for real, in a committed copy of the repository, with fake ``aws``, ``docker`` and
``python3`` first on PATH: each records its arguments, and ``aws`` answers like the AWS CLI the few calls whose
output the deploy reads (no Docker engine and no AWS account here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline_tasks.local.template import resources_of

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
GUIDE = REPO / "docs" / "deploy.md"
TRUST_POLICY = REPO / "infra" / "github-oidc-trust.json"
TARGETS = ("validator", "staging", "transformer")
SHA = "0123456789abcdef0123456789abcdef01234567"
EMAIL = "data-team@example.com"
ARTIFACT_BUCKET = "ecom-pipeline-prod-bootstrap-artifactbucket-1a2b3c4d"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

# The AWS CLI's answers (https://docs.aws.amazon.com/AmazonECR/latest/userguide/example_ecr_DescribeImages_section.html):
# a tag missing from a repository is an ImageNotFoundException, a missing repository a RepositoryNotFoundException,
# both on stderr with exit code 254.
FAKE_AWS = r"""#!/usr/bin/env bash
printf 'aws %s\n' "$*" >> "$FAKE_LOG"
case "$1 $2" in
  "ecr describe-images")
    repository=""; tag=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --repository-name) repository=$2; shift ;;
        --image-ids) tag=${2#imageTag=}; shift ;;
      esac
      shift
    done
    case " ${FAKE_MISSING_REPOSITORIES:-} " in *" $repository "*)
      echo "An error occurred (RepositoryNotFoundException) when calling the DescribeImages operation:" \
        "The repository with name '$repository' does not exist in the registry with id '123456789012'" >&2
      exit 254 ;;
    esac
    case " ${FAKE_IMAGES:-} " in *" $repository:$tag "*)
      echo "sha256:4a1c6567c38904384ebc64e35b7eeddd8451110c299e3368d2210066487d97e5"; exit 0 ;;
    esac
    echo "An error occurred (ImageNotFoundException) when calling the DescribeImages operation: The image with" \
      "imageId {imageDigest:'null', imageTag:'$tag'} does not exist within the repository with name '$repository'" >&2
    exit 254 ;;
  "cloudformation describe-stacks")
    case "$*" in
      *ArtifactBucketName*) echo "$FAKE_ARTIFACT_BUCKET" ;;
      *Registry*) echo "$FAKE_REGISTRY" ;;
    esac ;;
  "ecr get-login-password") echo "a-token" ;;
esac
"""
FAKE_DOCKER = r"""#!/usr/bin/env bash
printf 'docker %s\n' "$*" >> "$FAKE_LOG"
if [ "$1" = login ]; then cat > /dev/null; fi
"""
FAKE_PYTHON = r"""#!/usr/bin/env bash
printf 'python3 %s\n' "$*" >> "$FAKE_LOG"
"""
REFUSE = r"""#!/usr/bin/env bash
printf '%s %s\n' "$(basename "$0")" "$*" >> "$FAKE_LOG"
exit 97
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the deploy reads, from this working tree, committed to a repository of its own (the roll-back
    deploys a commit) so that the targets never write into the real one."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copy(REPO / "Makefile", root)
    ignore = shutil.ignore_patterns("__pycache__", "build")
    for folder in ("infra", "containers", "statemachine", "pipeline_tasks"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    git = ["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the deploy paths under test"], check=True)
    return root


@dataclass
class Fakes:
    """Fake commands first on PATH, and the calls they recorded."""

    bin: Path
    log: Path

    def make(self, checkout: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
        for name in ("ENVIRONMENT_NAME", "IMAGE_TAG", "ALERT_EMAIL", "ARTIFACT_BUCKET", "REGISTRY", "STACK"):
            env.pop(name, None)
        env |= {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "FAKE_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
            "FAKE_REGISTRY": REGISTRY,
            **environment,
        }
        return subprocess.run(
            ["make", "--no-print-directory", "-C", str(checkout), *arguments],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def calls(self, program: str | None = None) -> list[str]:
        lines = self.log.read_text().splitlines()
        return [line for line in lines if program is None or line.startswith(f"{program} ")]


def _fakes(folder: Path, scripts: dict[str, str]) -> Fakes:
    folder.mkdir()
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    log = folder.parent / "calls.log"
    log.touch()
    return Fakes(folder, log)


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return _fakes(tmp_path / "bin", {"aws": FAKE_AWS, "docker": FAKE_DOCKER, "python3": FAKE_PYTHON})


@pytest.fixture
def refusing(tmp_path: Path) -> Fakes:
    """``aws`` and ``docker`` that fail when called."""
    return _fakes(tmp_path / "bin", {"aws": REFUSE, "docker": REFUSE, "python3": REFUSE})


def _load(path: Path) -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


def _jobs() -> dict[str, dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _index(calls: list[str], fragment: str) -> int:
    return next(i for i, call in enumerate(calls) if fragment in call)


# ---------------------------------------------------------------- 1. the OIDC trust


def _oidc_subjects() -> set[str]:
    """The ``sub`` claim of the token of every job that may ask for one. A job that names an environment gets
    ``repo:OWNER/REPO:environment:NAME`` whatever branch it runs on
    (https://docs.github.com/en/actions/reference/security/oidc, "Filtering for a specific environment")."""
    subjects = set()
    for name, job in _jobs().items():
        if job.get("permissions", {}).get("id-token") != "write":
            continue
        environment = job.get("environment")
        environment = environment["name"] if isinstance(environment, dict) else environment
        assert environment, f"{name} asks for a token outside an environment: its sub would name a ref"
        subjects.add(f"repo:OWNER/REPO:environment:{environment}")
    return subjects


def test_the_deploy_role_trusts_the_subject_of_the_deploy_jobs():
    assert _oidc_subjects() == {"repo:OWNER/REPO:environment:production"}
    [statement] = json.loads(TRUST_POLICY.read_text())["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    # aws-actions/configure-aws-credentials asks for the audience sts.amazonaws.com
    # (https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws).
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert {conditions["token.actions.githubusercontent.com:sub"]} == _oidc_subjects()
    guide = GUIDE.read_text()
    for subject in _oidc_subjects():
        assert f"`{subject}`" in guide
    assert ":ref:refs/heads/" not in guide  # a subject the deploy job's token never carries


# ---------------------------------------------------------------- 2. the bootstrap stack


def test_the_bootstrap_stack_holds_the_repositories_and_the_artifact_bucket():
    template = _load(REPO / "infra" / "bootstrap.yaml")
    assert set(template["Parameters"]) == {"EnvironmentName"}
    repositories = resources_of(template, "AWS::ECR::Repository").values()
    names = sorted(r["Properties"]["RepositoryName"]["Fn::Sub"] for r in repositories)
    assert names == sorted(f"ecommerce-pipeline/${{EnvironmentName}}/{target}" for target in TARGETS)
    for repository in repositories:
        properties = repository["Properties"]
        assert properties["ImageTagMutability"] == "IMMUTABLE"
        assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
        [rule] = json.loads(properties["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == 20 and rule["action"]["type"] == "expire"

    [(name, bucket)] = resources_of(template, "AWS::S3::Bucket").items()
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    [policy] = resources_of(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": name}
    [tls] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    outputs = template["Outputs"]
    assert outputs["ArtifactBucketName"]["Value"] == {"Ref": name}
    assert outputs["Registry"]["Value"] == {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"}
    for target in TARGETS:
        assert f"{target.capitalize()}RepositoryUri" in outputs


def test_the_pipeline_stack_pulls_the_images_of_the_bootstrap_repositories():
    template = _load(REPO / "infra" / "pipeline.yaml")
    assert not resources_of(template, "AWS::ECR::Repository"), "the repositories belong to infra/bootstrap.yaml"
    registry = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"
    images = {
        r["Properties"]["ContainerDefinitions"][0]["Name"]: r["Properties"]["ContainerDefinitions"][0]["Image"]
        for r in resources_of(template, "AWS::ECS::TaskDefinition").values()
    }
    assert images == {
        target: {
            "Fn::Sub": f"{registry}/ecommerce-pipeline/${{EnvironmentName}}/{target}:${{{target.capitalize()}ImageTag}}"
        }
        for target in TARGETS
    }
    role = template["Resources"]["TaskExecutionRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    [pull] = [s for s in statements if s.get("Sid") == "PullImages"]
    pattern = (
        "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/ecommerce-pipeline/${EnvironmentName}/*"
    )
    assert pull["Resource"] == {"Fn::Sub": pattern}
    for target in TARGETS:  # the ARN of each bootstrap repository falls under the pattern
        arn = f"arn:aws:ecr:eu-west-1:123456789012:repository/ecommerce-pipeline/prod/{target}"
        concrete = pattern.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "eu-west-1")
        concrete = concrete.replace("${AWS::AccountId}", "123456789012").replace("${EnvironmentName}", "prod")
        assert re.fullmatch(re.escape(concrete).replace(r"\*", ".*"), arn)


def test_make_bootstrap_deploys_the_bootstrap_stack(checkout, fakes):
    result = fakes.make(checkout, "bootstrap", "ENVIRONMENT_NAME=staging")
    assert result.returncode == 0, result.stdout + result.stderr
    [deploy] = fakes.calls("aws")
    assert deploy.startswith("aws cloudformation deploy --template-file infra/bootstrap.yaml")
    assert "--stack-name ecom-pipeline-staging-bootstrap" in deploy
    assert "--parameter-overrides EnvironmentName=staging" in deploy
    assert "--capabilities" not in deploy  # no IAM resource in the bootstrap stack
    assert not fakes.calls("docker")


def test_make_deploy_takes_the_artifact_bucket_from_the_bootstrap_stack(checkout, fakes):
    result = fakes.make(checkout, "deploy", f"IMAGE_TAG={SHA}", f"ALERT_EMAIL={EMAIL}")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = fakes.calls()
    lookup = _index(calls, "aws cloudformation describe-stacks --stack-name ecom-pipeline-prod-bootstrap")
    assert "ArtifactBucketName" in calls[lookup]
    package = _index(calls, "aws cloudformation package")
    assert lookup < package and f"--s3-bucket {ARTIFACT_BUCKET}" in calls[package]
    assert _index(calls, "python3 -m pip install") < package  # the Lambda code with its boto3
    deploy = calls[_index(calls, "aws cloudformation deploy")]
    assert "--stack-name ecom-pipeline-prod " in deploy
    for parameter in ("EnvironmentName=prod", f"AlertEmail={EMAIL}"):
        assert parameter in deploy
    for target in TARGETS:
        assert f"{target.capitalize()}ImageTag={SHA}" in deploy


def test_the_workflow_bootstraps_before_it_pushes_and_deploys():
    runs = [run.split()[:2] for run in _runs(_jobs()["deploy"])]
    assert runs == [["make", "bootstrap"], ["make", "images"], ["make", "deploy"]]


# ---------------------------------------------------------------- 3. linux/amd64


def test_images_are_built_for_the_platform_the_task_definitions_declare(checkout, fakes):
    result = fakes.make(checkout, "images", f"IMAGE_TAG={SHA}")
    assert result.returncode == 0, result.stdout + result.stderr
    builds = [call for call in fakes.calls("docker") if call.startswith("docker build ")]
    assert len(builds) == 3 and all("--platform linux/amd64 " in build for build in builds)
    # Fargate runs X86_64 unless told otherwise (https://repost.aws/knowledge-center/ecs-task-exec-format-error);
    # the task definitions say so, and an image built on an ARM laptop is still built for it.
    template = _load(REPO / "infra" / "pipeline.yaml")
    for task in resources_of(template, "AWS::ECS::TaskDefinition").values():
        assert task["Properties"]["RuntimePlatform"] == {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}


# ---------------------------------------------------------------- 4. pushes that skip existing tags


def test_a_push_skips_the_tags_already_in_ecr(checkout, fakes):
    present = f"ecommerce-pipeline/prod/validator:{SHA}"
    result = fakes.make(checkout, "images", f"IMAGE_TAG={SHA}", FAKE_IMAGES=present)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = fakes.calls()
    for target in TARGETS:
        check = _index(calls, f"aws ecr describe-images --repository-name ecommerce-pipeline/prod/{target} ")
        assert f"--image-ids imageTag={SHA}" in calls[check]
    pushed = [call.split()[-1] for call in fakes.calls("docker") if call.startswith("docker push ")]
    assert pushed == [f"{REGISTRY}/ecommerce-pipeline/prod/{target}:{SHA}" for target in ("staging", "transformer")]
    for target in ("staging", "transformer"):
        assert _index(calls, f"ecommerce-pipeline/prod/{target} ") < _index(calls, f"--target {target} ")
    assert len([c for c in calls if c.startswith("docker login ")]) == 1
    assert "validator" in result.stdout  # says what it skipped


def test_a_rerun_with_every_tag_in_ecr_builds_nothing(checkout, fakes):
    present = " ".join(f"ecommerce-pipeline/prod/{target}:{SHA}" for target in TARGETS)
    result = fakes.make(checkout, "images", f"IMAGE_TAG={SHA}", FAKE_IMAGES=present)
    assert result.returncode == 0, result.stdout + result.stderr
    assert fakes.calls("docker") == []


def test_images_stop_before_building_when_a_repository_is_missing(checkout, fakes):
    missing = "ecommerce-pipeline/prod/validator"
    result = fakes.make(checkout, "images", f"IMAGE_TAG={SHA}", FAKE_MISSING_REPOSITORIES=missing)
    assert result.returncode != 0
    assert fakes.calls("docker") == []
    assert "RepositoryNotFoundException" in result.stderr and "make bootstrap" in result.stderr


# ---------------------------------------------------------------- 5. roll-back


def _head(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def test_rollback_redeploys_a_pushed_commit_without_building(checkout, fakes):
    sha = _head(checkout)
    present = " ".join(f"ecommerce-pipeline/prod/{target}:{sha}" for target in TARGETS)
    result = fakes.make(checkout, "rollback", f"IMAGE_TAG={sha[:10]}", f"ALERT_EMAIL={EMAIL}", FAKE_IMAGES=present)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = fakes.calls()
    assert fakes.calls("docker") == []
    checks = [_index(calls, f"describe-images --repository-name ecommerce-pipeline/prod/{t} ") for t in TARGETS]
    deploy = _index(calls, "aws cloudformation deploy --template-file")
    assert max(checks) < deploy and all(f"imageTag={sha}" in calls[check] for check in checks)
    for target in TARGETS:
        assert f"{target.capitalize()}ImageTag={sha}" in calls[deploy]
    # the template, state machine and Lambda code deployed are the commit's own, not the working tree's
    assert (checkout / "out" / "rollback" / sha / "infra" / "pipeline.yaml").is_file()


def test_rollback_refuses_a_commit_whose_images_are_not_all_in_ecr(checkout, fakes):
    sha = _head(checkout)
    present = f"ecommerce-pipeline/prod/validator:{sha} ecommerce-pipeline/prod/staging:{sha}"
    result = fakes.make(checkout, "rollback", f"IMAGE_TAG={sha}", f"ALERT_EMAIL={EMAIL}", FAKE_IMAGES=present)
    assert result.returncode != 0
    assert "ecommerce-pipeline/prod/transformer" in result.stderr
    assert not [call for call in fakes.calls("aws") if call.startswith("aws cloudformation ")]
    assert fakes.calls("docker") == []


def test_rollback_needs_the_tag_to_roll_back_to(checkout, fakes):
    result = fakes.make(checkout, "rollback", f"ALERT_EMAIL={EMAIL}")
    assert result.returncode != 0 and "IMAGE_TAG" in result.stdout + result.stderr
    assert fakes.calls() == []


def test_the_workflow_rolls_back_from_a_dispatch_input():
    document = yaml.safe_load(WORKFLOW.read_text())
    triggers = document.get("on", document.get(True))
    [name] = triggers["workflow_dispatch"]["inputs"]
    [rollback] = [job for job in _jobs().values() if any(run.startswith("make rollback") for run in _runs(job))]
    assert name in str(rollback["if"]) and name in str(rollback["env"]["IMAGE_TAG"])
    assert not any(run.startswith("make images") for run in _runs(rollback))
    [checkout] = [step for step in rollback["steps"] if step.get("uses", "").startswith("actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0  # the commit rolled back to is in the clone
    for job in ("test", "deploy"):  # a roll-back neither tests nor pushes this commit
        assert name in str(_jobs()[job]["if"])


# ---------------------------------------------------------------- 8. the plan


def test_deploy_plan_prints_every_command_without_calling_aws_or_docker(checkout, refusing):
    result = refusing.make(checkout, "deploy-plan", "ENVIRONMENT_NAME=qa", f"IMAGE_TAG={SHA}", f"ALERT_EMAIL={EMAIL}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert refusing.calls() == []
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    order = [
        "aws cloudformation deploy --template-file infra/bootstrap.yaml --stack-name ecom-pipeline-qa-bootstrap",
        *[
            f"docker build --platform linux/amd64 -f containers/Dockerfile --target {t} "
            f"-t $REGISTRY/ecommerce-pipeline/qa/{t}:{SHA} ."
            for t in TARGETS
        ],
        "aws cloudformation package --template-file infra/pipeline.yaml --s3-bucket $ARTIFACT_BUCKET",
        "aws cloudformation deploy --template-file out/pipeline.packaged.yaml --stack-name ecom-pipeline-qa ",
    ]
    positions = [_index(lines, fragment) for fragment in order]
    assert positions == sorted(positions), result.stdout
    for parameter in (
        "EnvironmentName=qa",
        f"AlertEmail={EMAIL}",
        *(f"{t.capitalize()}ImageTag={SHA}" for t in TARGETS),
    ):
        assert parameter in lines[positions[-1]]  # in the deploy command, and listed on its own
        assert f"#   {parameter}" in result.stdout.splitlines()


def test_the_plan_prints_the_commands_the_targets_run(checkout, fakes):
    arguments = [f"IMAGE_TAG={SHA}", f"ALERT_EMAIL={EMAIL}", f"ARTIFACT_BUCKET={ARTIFACT_BUCKET}"]
    plan = fakes.make(checkout, "deploy-plan", *arguments).stdout.splitlines()
    assert fakes.calls() == []
    assert fakes.make(checkout, "deploy", *arguments).returncode == 0
    ran = [call for call in fakes.calls("aws") if call.startswith("aws cloudformation ")]
    assert ran and all(call in plan for call in ran)


# ---------------------------------------------------------------- 9. the guide


def test_the_guide_names_only_make_targets_that_exist():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"\bmake ([a-z][a-z-]*)", GUIDE.read_text()))
    assert {"bootstrap", "images", "deploy", "rollback", "deploy-plan"} <= targets
    assert [t for t in targets if f"\n{t}:" not in makefile] == []


def test_the_guide_prices_the_images_and_leaves_the_local_stack_section_last():
    guide = GUIDE.read_text()
    costs = guide.split("## What it costs", 1)[1].split("\n## ", 1)[0]
    assert "ECR" in costs and "$0.10" in costs and "python3.13" in guide
    headers = re.findall(r"^## .*$", guide, re.M)
    assert headers[-1] == "## What the local stack checks, and what it cannot"
    local = guide.split("## What the local stack checks, and what it cannot", 1)[1]
    for test in ("test_least_privilege.py", "test_unenforced.py", "test_aws_facts.py"):
        assert test in local  # what the emulator cannot check names what covers it
