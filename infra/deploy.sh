#!/usr/bin/env bash
# Deploys ecom-pipeline to AWS (docs/deploy.md). The Make targets call it; each step prints the commands it runs.
#   deploy.sh plan       print the commands of every step below, calling neither aws nor docker
#   deploy.sh bootstrap  deploy infra/bootstrap.yaml: the ECR repositories and the artifact bucket
#   deploy.sh images     build (linux/amd64) and push each task image whose IMAGE_TAG is not in ECR yet
#   deploy.sh deploy     package the Lambda code and the state machine, deploy infra/pipeline.yaml with IMAGE_TAG
#   deploy.sh rollback   deploy commit IMAGE_TAG again, once its three images are found in ECR: no build, no push
# Settings, from the environment: ENVIRONMENT_NAME, IMAGE_TAG, ALERT_EMAIL (plan, deploy, rollback), STACK
# (default ecom-pipeline-ENVIRONMENT_NAME), ARTIFACT_BUCKET and REGISTRY (default: the bootstrap stack's outputs).
set -euo pipefail
cd "$(dirname "$0")/.."

environment=${ENVIRONMENT_NAME:?ENVIRONMENT_NAME is needed}
tag=${IMAGE_TAG:?IMAGE_TAG is needed}
stack=${STACK:-ecom-pipeline-$environment}
bootstrap_stack="ecom-pipeline-$environment-bootstrap"
targets=(validator staging transformer)
planning=false

die() {
  echo "$*" >&2
  exit 2
}

[[ $environment =~ ^[a-z][a-z0-9-]{1,15}$ ]] || die "ENVIRONMENT_NAME=$environment: lower-case letters, digits, '-'"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "IMAGE_TAG=$tag is not a valid image tag"

# The address the failure notifications go to, as infra/pipeline.yaml's AlertEmail pattern takes it.
alert_email() {
  [[ ${ALERT_EMAIL:-} =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]] || die "ALERT_EMAIL=<address of the alerts> is needed"
}

# One shell word as the plan prints it: as is when the shell would read it back unchanged ($NAME expands on
# purpose: a value only known when the plan is run), else quoted.
word() {
  local plain='^[A-Za-z0-9_./:=@,+%$-]+$'
  if [[ $1 =~ $plain ]]; then
    printf '%s' "$1"
  elif [[ $1 != *"'"* ]]; then
    printf "'%s'" "$1"
  else
    printf '"%s"' "$1"
  fi
}

line() {
  local first=true argument
  for argument in "$@"; do
    $first || printf ' '
    first=false
    word "$argument"
  done
  printf '\n'
}

# Prints a command; runs it too unless planning.
run() {
  line "$@"
  $planning || "$@"
}

# NAME=value of a bootstrap stack output: printed as a shell assignment when planning, else looked up unless
# the environment gives NAME.
bootstrap_output() {
  local name=$1 key=$2 value
  local query=(aws cloudformation describe-stacks --stack-name "$bootstrap_stack"
    --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue" --output text)
  if [[ -n ${!name:-} ]]; then
    value=${!name}
  elif $planning; then
    echo "$name=\$($(line "${query[@]}"))"
    value="\$$name"
  else
    value=$("${query[@]}") || die "no stack $bootstrap_stack here (or no access to it): make bootstrap first"
    [[ -n $value && $value != None ]] || die "no output $key in stack $bootstrap_stack: make bootstrap first"
    echo "# $name=$value (output $key of $bootstrap_stack)"
  fi
  printf -v "$name" '%s' "$value"
}

# Whether REPOSITORY holds IMAGE_TAG. A missing tag is ImageNotFoundException; any other error (a missing
# repository, no credentials) stops here rather than building
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/example_ecr_DescribeImages_section.html).
in_ecr() {
  local repository=$1 error
  if error=$(aws ecr describe-images --repository-name "$repository" --image-ids "imageTag=$tag" 2>&1 >/dev/null); then
    return 0
  fi
  [[ $error == *ImageNotFoundException* ]] && return 1
  echo "$error" >&2
  [[ $error == *RepositoryNotFoundException* ]] && die "the repository $repository is missing: make bootstrap first"
  exit 1
}

bootstrap() {
  echo "# The ECR repositories and the artifact bucket, once per account and environment (a no-op when unchanged)"
  run aws cloudformation deploy --template-file infra/bootstrap.yaml --stack-name "$bootstrap_stack" \
    --no-fail-on-empty-changeset --parameter-overrides "EnvironmentName=$environment"
}

# Fargate runs X86_64 unless a task definition says otherwise, and infra/pipeline.yaml says X86_64: the images
# are built for it whatever machine builds them (https://repost.aws/knowledge-center/ecs-task-exec-format-error).
# The repositories refuse a tag twice (IMMUTABLE): a tag already there is not built again.
images() {
  local target repository logged_in=false
  echo "# The task images for linux/amd64; each is skipped when aws ecr describe-images finds its tag"
  if ! $planning && [[ $(git rev-parse HEAD 2>/dev/null) == "$tag" ]] &&
    [[ -n $(git status --porcelain -- containers/Dockerfile jars pyproject.toml README.md pipeline_tasks \
      notebooks/pipeline 2>/dev/null) ]]; then
    echo "# warning: uncommitted changes to what the images copy go into the images tagged $tag, for good" >&2
  fi
  bootstrap_output REGISTRY Registry
  for target in "${targets[@]}"; do
    repository="ecommerce-pipeline/$environment/$target"
    if $planning; then
      line aws ecr describe-images --repository-name "$repository" --image-ids "imageTag=$tag"
    elif in_ecr "$repository"; then
      echo "# $repository:$tag is in ECR already: not built again"
      continue
    fi
    if ! $logged_in; then
      echo "aws ecr get-login-password | docker login --username AWS --password-stdin $(word "$REGISTRY")"
      $planning || aws ecr get-login-password | docker login --username AWS --password-stdin "$REGISTRY"
      logged_in=true
    fi
    run docker build --platform linux/amd64 -f containers/Dockerfile --target "$target" \
      -t "$REGISTRY/$repository:$tag" .
    run docker push "$REGISTRY/$repository:$tag"
  done
}

parameters() {
  echo "EnvironmentName=$environment" "AlertEmail=$ALERT_EMAIL" \
    "ValidatorImageTag=$tag" "StagingImageTag=$tag" "TransformerImageTag=$tag"
}

deploy() {
  local overrides
  alert_email
  read -r -a overrides <<<"$(parameters)"
  echo "# The Lambda code with its pinned boto3; it and the state machine definition go to the artifact bucket"
  run bash containers/lambda/build.sh
  bootstrap_output ARTIFACT_BUCKET ArtifactBucketName
  $planning || mkdir -p out
  run aws cloudformation package --template-file infra/pipeline.yaml --s3-bucket "$ARTIFACT_BUCKET" \
    --output-template-file out/pipeline.packaged.yaml
  echo "# The stack, with the images tagged $tag"
  run aws cloudformation deploy --template-file out/pipeline.packaged.yaml --stack-name "$stack" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides "${overrides[@]}"
}

# The images, template, state machine and Lambda code of one commit belong together: the roll-back deploys
# the commit's own tree (git archive), with its images, which must all be in ECR already.
rollback() {
  local commit target tree missing=()
  alert_email
  commit=$(git rev-parse --verify --quiet "$tag^{commit}") ||
    die "IMAGE_TAG=$tag is no commit of this clone: git fetch, or give the SHA of a deployed commit"
  tag=$commit
  for target in "${targets[@]}"; do
    in_ecr "ecommerce-pipeline/$environment/$target" || missing+=("ecommerce-pipeline/$environment/$target:$tag")
  done
  ((${#missing[@]} == 0)) || die "not in ECR, so not deployable without a build: ${missing[*]}"
  bootstrap_output ARTIFACT_BUCKET ArtifactBucketName
  tree="out/rollback/$commit"
  echo "# Commit $commit, exported to $tree"
  rm -rf "$tree"
  mkdir -p "$tree"
  git archive "$commit" | tar -x -C "$tree"
  run make --no-print-directory -C "$tree" deploy "ENVIRONMENT_NAME=$environment" "IMAGE_TAG=$commit" \
    "ALERT_EMAIL=$ALERT_EMAIL" "ARTIFACT_BUCKET=$ARTIFACT_BUCKET" "STACK=$stack"
}

plan() {
  local parameter
  alert_email
  planning=true
  echo "# ecom-pipeline to environment $environment, images tagged $tag: the commands of make bootstrap, images, deploy"
  bootstrap
  images
  deploy
  echo "# The parameters of stack $stack:"
  for parameter in $(parameters); do
    echo "#   $parameter"
  done
}

case "${1:-}" in
  plan | bootstrap | images | deploy | rollback) "$1" ;;
  *) die "usage: deploy.sh plan|bootstrap|images|deploy|rollback (settings from the environment, see its header)" ;;
esac
