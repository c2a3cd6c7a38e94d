#!/usr/bin/env bash
# One-time Google Cloud setup so GitHub Actions can build, run and schedule this Kedro pipeline on Vertex AI
# with Workload Identity Federation (no JSON keys). Written by `kedro-vertex-ci init --github`; run it once as
# a project owner, in a shell where `gcloud` and `gh` are logged in. Safe to rerun: every resource is
# described before it is created, and IAM bindings are only ever added.
#
# What it sets up (least privilege):
#   runtime service account  the Vertex AI steps run as (vertexai.yml run_config.service_account): objects in
#                            the pipeline bucket, image pulls from the Artifact Registry repository, Vertex AI
#   CI service account       what the workflow impersonates: submits pipelines and schedules, starts Cloud
#                            Build, writes the source tarball; may act as the runtime account and no other
#   WIF pool and provider    only tokens of this one GitHub repository (by its numeric id) are accepted
#   Cloud Build's account    reads the source from the bucket, pushes the image, writes build logs
#   bucket lifecycle         intermediate data and build sources are deleted after INTERMEDIATE_DAYS days
set -euo pipefail

# Values from conf/base/vertexai.yml and the git remote at the time the script was written.
PROJECT_ID=@@PROJECT_ID@@
REGION=@@REGION@@
GITHUB_REPO=@@GITHUB_REPO@@
BUCKET=@@BUCKET@@
ROOT_PREFIX=@@ROOT_PREFIX@@
AR_REPOSITORY=@@AR_REPOSITORY@@
RUNTIME_SA=@@RUNTIME_SA@@
CI_SA_NAME=@@CI_SA_NAME@@
POOL=github
PROVIDER=kedro-vertex
INTERMEDIATE_DAYS=7
CI_SA="$CI_SA_NAME@$PROJECT_ID.iam.gserviceaccount.com"

say() { printf '==> %s\n' "$*" >&2; }

# `exists CMD...`: the describe command succeeds (the resource is there already).
exists() { "$@" >/dev/null 2>&1; }

PROJECT_NUMBER=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
# The numeric repository id never changes, unlike owner/name (renames, transfers): the provider trusts it.
GITHUB_REPOSITORY_ID=$(gh api "repos/$GITHUB_REPO" --jq .id)
[[ $GITHUB_REPOSITORY_ID =~ ^[0-9]+$ ]] || {
  say "could not read the id of github.com/$GITHUB_REPO (is gh logged in?)"
  exit 1
}

say "APIs: Vertex AI, Cloud Build, Artifact Registry, Cloud Storage, IAM credentials, STS"
gcloud services enable aiplatform.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
  iamcredentials.googleapis.com sts.googleapis.com storage.googleapis.com --project "$PROJECT_ID"

if exists gcloud artifacts repositories describe "$AR_REPOSITORY" --location "$REGION" --project "$PROJECT_ID"; then
  say "Artifact Registry repository $AR_REPOSITORY exists"
else
  say "Artifact Registry repository $AR_REPOSITORY: images of the pipeline"
  gcloud artifacts repositories create "$AR_REPOSITORY" --repository-format=docker --location "$REGION" \
    --project "$PROJECT_ID"
fi

if exists gcloud storage buckets describe "gs://$BUCKET" --project "$PROJECT_ID"; then
  say "bucket gs://$BUCKET exists"
else
  say "bucket gs://$BUCKET: pipeline root, data between steps, Cloud Build sources"
  gcloud storage buckets create "gs://$BUCKET" --location "$REGION" --uniform-bucket-level-access \
    --project "$PROJECT_ID"
fi
say "bucket lifecycle: delete intermediate data and build sources after $INTERMEDIATE_DAYS days"
LIFECYCLE=$(mktemp)
trap 'rm -f "$LIFECYCLE"' EXIT
cat >"$LIFECYCLE" <<EOF
{"rule": [{"action": {"type": "Delete"},
           "condition": {"age": $INTERMEDIATE_DAYS,
                         "matchesPrefix": ["${ROOT_PREFIX}kedro-vertex-ci/", "kedro-vertex-ci/source/"]}}]}
EOF
gcloud storage buckets update "gs://$BUCKET" --lifecycle-file="$LIFECYCLE" --project "$PROJECT_ID"

if exists gcloud iam service-accounts describe "$RUNTIME_SA" --project "$PROJECT_ID"; then
  say "runtime service account $RUNTIME_SA exists"
else
  say "runtime service account $RUNTIME_SA: what the Vertex AI steps run as"
  gcloud iam service-accounts create "${RUNTIME_SA%%@*}" --display-name "Kedro pipeline steps on Vertex AI" \
    --project "$PROJECT_ID"
fi
gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "serviceAccount:$RUNTIME_SA" \
  --role roles/aiplatform.user --condition None >/dev/null
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --member "serviceAccount:$RUNTIME_SA" \
  --role roles/storage.objectAdmin >/dev/null
gcloud artifacts repositories add-iam-policy-binding "$AR_REPOSITORY" --location "$REGION" \
  --member "serviceAccount:$RUNTIME_SA" --role roles/artifactregistry.reader --project "$PROJECT_ID" >/dev/null

if exists gcloud iam service-accounts describe "$CI_SA" --project "$PROJECT_ID"; then
  say "CI service account $CI_SA exists"
else
  say "CI service account $CI_SA: what the GitHub workflow impersonates"
  gcloud iam service-accounts create "$CI_SA_NAME" --display-name "kedro-vertex-ci from GitHub Actions" \
    --project "$PROJECT_ID"
fi
for role in roles/aiplatform.user roles/cloudbuild.builds.editor; do
  gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "serviceAccount:$CI_SA" --role "$role" \
    --condition None >/dev/null
done
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --member "serviceAccount:$CI_SA" \
  --role roles/storage.objectAdmin >/dev/null
gcloud artifacts repositories add-iam-policy-binding "$AR_REPOSITORY" --location "$REGION" \
  --member "serviceAccount:$CI_SA" --role roles/artifactregistry.reader --project "$PROJECT_ID" >/dev/null
# Submitting a pipeline that runs as the runtime account needs actAs on that one account, not project-wide.
gcloud iam service-accounts add-iam-policy-binding "$RUNTIME_SA" --member "serviceAccount:$CI_SA" \
  --role roles/iam.serviceAccountUser --project "$PROJECT_ID" >/dev/null

say "Cloud Build's service account: read sources, push images, write logs"
BUILD_SA=$(gcloud builds get-default-service-account --project "$PROJECT_ID" --format='value(serviceAccountEmail)')
BUILD_SA=${BUILD_SA##*/}
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --member "serviceAccount:$BUILD_SA" \
  --role roles/storage.objectViewer >/dev/null
gcloud artifacts repositories add-iam-policy-binding "$AR_REPOSITORY" --location "$REGION" \
  --member "serviceAccount:$BUILD_SA" --role roles/artifactregistry.writer --project "$PROJECT_ID" >/dev/null
gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "serviceAccount:$BUILD_SA" \
  --role roles/logging.logWriter --condition None >/dev/null

if exists gcloud iam workload-identity-pools describe "$POOL" --location global --project "$PROJECT_ID"; then
  say "workload identity pool $POOL exists"
else
  say "workload identity pool $POOL"
  gcloud iam workload-identity-pools create "$POOL" --location global --display-name "GitHub Actions" \
    --project "$PROJECT_ID"
fi
if exists gcloud iam workload-identity-pools providers describe "$PROVIDER" --workload-identity-pool "$POOL" \
  --location global --project "$PROJECT_ID"; then
  say "provider $PROVIDER exists (its attribute condition is kept as it is)"
else
  say "provider $PROVIDER: GitHub's OIDC tokens of repository id $GITHUB_REPOSITORY_ID only"
  gcloud iam workload-identity-pools providers create-oidc "$PROVIDER" --location global \
    --workload-identity-pool "$POOL" --display-name "GitHub $GITHUB_REPO" \
    --issuer-uri "https://token.actions.githubusercontent.com" \
    --attribute-mapping "google.subject=assertion.sub,attribute.repository=assertion.repository,attribute.repository_id=assertion.repository_id,attribute.ref=assertion.ref" \
    --attribute-condition "assertion.repository_id == '$GITHUB_REPOSITORY_ID'" \
    --project "$PROJECT_ID"
fi
# Only workflows of this one repository may impersonate the CI account.
gcloud iam service-accounts add-iam-policy-binding "$CI_SA" --role roles/iam.workloadIdentityUser \
  --member "principalSet://iam.googleapis.com/projects/$PROJECT_NUMBER/locations/global/workloadIdentityPools/$POOL/attribute.repository_id/$GITHUB_REPOSITORY_ID" \
  --project "$PROJECT_ID" >/dev/null

say "repository variables for the workflow (not secrets: nothing here is secret)"
gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --repo "$GITHUB_REPO" \
  --body "projects/$PROJECT_NUMBER/locations/global/workloadIdentityPools/$POOL/providers/$PROVIDER"
gh variable set GCP_SERVICE_ACCOUNT --repo "$GITHUB_REPO" --body "$CI_SA"
say "done. IAM changes take a few minutes to apply: a first run failing with permission denied right after is normal"
