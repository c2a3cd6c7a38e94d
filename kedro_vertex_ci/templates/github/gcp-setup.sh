# One-time Google Cloud setup so GitHub Actions can build, run and schedule this pipeline with
# Workload Identity Federation (no JSON keys). Run it once as a project owner, in a shell with gcloud and gh.
PROJECT_ID=@@PROJECT_ID@@
REGION=@@REGION@@
GITHUB_REPO=@@GITHUB_REPO@@ # owner/name
BUCKET=@@BUCKET@@ # the pipeline root bucket (run_config.root)
POOL=github
PROVIDER=kedro-vertex
SA_NAME=kedro-vertex-ci
SA="$SA_NAME@$PROJECT_ID.iam.gserviceaccount.com"
PROJECT_NUMBER=$(gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')
# The numeric repository id never changes, unlike owner/name (renames, transfers): trust that.
GITHUB_REPOSITORY_ID=$(gh api "repos/$GITHUB_REPO" --jq .id)

gcloud services enable aiplatform.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
  iamcredentials.googleapis.com sts.googleapis.com storage.googleapis.com --project "$PROJECT_ID"
gcloud artifacts repositories create @@AR_REPOSITORY@@ --repository-format=docker --location "$REGION" --project "$PROJECT_ID"
gcloud storage buckets create "gs://$BUCKET" --location "$REGION" --uniform-bucket-level-access --project "$PROJECT_ID"

gcloud iam workload-identity-pools create "$POOL" --location global --display-name "GitHub Actions" \
  --project "$PROJECT_ID"
gcloud iam workload-identity-pools providers create-oidc "$PROVIDER" --location global \
  --workload-identity-pool "$POOL" --display-name "GitHub $GITHUB_REPO" \
  --issuer-uri "https://token.actions.githubusercontent.com" \
  --attribute-mapping "google.subject=assertion.sub,attribute.repository=assertion.repository,attribute.repository_id=assertion.repository_id,attribute.ref=assertion.ref" \
  --attribute-condition "assertion.repository_id == '$GITHUB_REPOSITORY_ID'" \
  --project "$PROJECT_ID"

gcloud iam service-accounts create "$SA_NAME" --display-name "kedro-vertex-ci from GitHub Actions" \
  --project "$PROJECT_ID"
for role in roles/aiplatform.user roles/cloudbuild.builds.editor roles/artifactregistry.writer \
  roles/iam.serviceAccountUser; do
  gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "serviceAccount:$SA" --role "$role" \
    --condition None
done
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --member "serviceAccount:$SA" \
  --role roles/storage.objectAdmin
# Only workflows of this one repository may act as the service account.
gcloud iam service-accounts add-iam-policy-binding "$SA" --role roles/iam.workloadIdentityUser \
  --member "principalSet://iam.googleapis.com/projects/$PROJECT_NUMBER/locations/global/workloadIdentityPools/$POOL/attribute.repository_id/$GITHUB_REPOSITORY_ID" \
  --project "$PROJECT_ID"

# Tell the workflow where to authenticate (repository variables, not secrets: nothing here is secret).
gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --repo "$GITHUB_REPO" \
  --body "projects/$PROJECT_NUMBER/locations/global/workloadIdentityPools/$POOL/providers/$PROVIDER"
gh variable set GCP_SERVICE_ACCOUNT --repo "$GITHUB_REPO" --body "$SA"
# IAM changes take a few minutes to apply: a first run failing with "permission denied" right after is normal.
