"""Permanent Google API errors (400, 403, 404, 409) turned into one paragraph that names the fix.

A raw ``403 PERMISSION_DENIED`` tells a user nothing about which role, API or bucket is missing; each hint
names the service, the identity's probable missing role, the API to enable or the bucket to create, and keeps
the server's own message at the end for detail.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CloudError
from .retry import http_status

_ROLES = {
    "vertex": "roles/aiplatform.user (and roles/iam.serviceAccountUser on the pipeline's service account)",
    "cloudbuild": "roles/cloudbuild.builds.editor (and roles/iam.serviceAccountUser on the build's service account)",
    "storage": "roles/storage.objectAdmin on the bucket",
    "artifactregistry": "roles/artifactregistry.reader (writer to push) on the repository",
}
_APIS = {"vertex": "aiplatform.googleapis.com", "cloudbuild": "cloudbuild.googleapis.com",
         "storage": "storage.googleapis.com", "artifactregistry": "artifactregistry.googleapis.com"}
_NAMES = {"vertex": "Vertex AI", "cloudbuild": "Cloud Build", "storage": "Cloud Storage",
          "artifactregistry": "Artifact Registry"}


@dataclass(frozen=True)
class Where:
    """What the failing call was about, so the hint can name it."""

    service: str  # vertex | cloudbuild | storage
    project: str
    region: str | None = None
    bucket: str | None = None
    service_account: str | None = None
    action: str = ""


def server_message(err: BaseException) -> str:
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())[:400]


def explain(err: BaseException, where: Where) -> CloudError:
    """A :class:`CloudError` with a one-paragraph hint for ``err`` (unknown errors keep the server's text)."""
    status = http_status(err)
    detail = server_message(err)
    name = _NAMES.get(where.service, where.service)
    doing = f" while trying to {where.action}" if where.action else ""
    api = _APIS.get(where.service, "")
    if status == 403 and ("SERVICE_DISABLED" in detail or "has not been used" in detail or "is disabled" in detail):
        text = (f"The {name} API is not enabled in project {where.project}{doing}. Enable it: `gcloud services "
                f"enable {api} --project={where.project}` (it takes a minute to apply).")
    elif status == 403:
        who = f"the service account {where.service_account}" if where.service_account else "the identity in use"
        bucket = f" gs://{where.bucket}" if where.bucket else ""
        text = (f"Permission denied by {name}{doing} in project {where.project}{bucket}. Grant {who} "
                f"{_ROLES.get(where.service, 'the needed role')}, and check that the {api} API is enabled.")
        if where.service == "cloudbuild":
            text += (" The staging bucket also needs roles/storage.objectAdmin, and pushing the image "
                     "roles/artifactregistry.writer for the build's service account.")
    elif status == 404 and where.service == "storage":
        text = (f"The bucket gs://{where.bucket} does not exist or is not visible{doing}. Create it in the "
                f"pipeline's region: `gcloud storage buckets create gs://{where.bucket} --project={where.project} "
                f"--location={where.region or 'REGION'}`.")
    elif status == 404:
        text = (f"{name} answered 404 Not Found{doing}: check project_id ({where.project}) and region "
                f"({where.region}) in vertexai.yml, and that the {api} API is enabled in that project.")
    elif status == 400 and where.service == "cloudbuild" and "service_account" in detail:
        text = (f"Cloud Build rejected the build{doing}: with a custom build service account the build needs "
                f"`options.logging: CLOUD_LOGGING_ONLY` or a logs bucket.")
    elif status == 400:
        text = (f"{name} rejected the request as invalid{doing}. Check the values it names below (service "
                f"account, network, labels, schedule cron and times, pipeline root).")
    elif status == 409:
        text = f"{name} says the resource already exists{doing}."
    else:
        text = f"{name} call failed{doing}."
    return CloudError(f"{text} Server said: {detail}")
