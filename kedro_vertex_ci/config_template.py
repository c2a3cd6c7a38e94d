"""The ``vertexai.yml`` that ``kedro-vertex-ci init`` writes: every option present, commented, and valid.

kedro-vertexai's template fails its own validation; ours is parsed by :func:`config.parse_config` in the
tests (and before ``init`` writes it), so it cannot drift from the model.
"""

from __future__ import annotations

from .names import sanitize_name

TEMPLATE = """\
# kedro-vertex-ci configuration. Reference: docs/configuration.md
# Environments override this file: conf/<env>/vertexai.yml wins key by key.
project_id: {project_id}
region: {region}

run_config:
  # Image the steps run in. `kedro-vertex-ci build` pins it by digest in the compiled spec.
  image: {region}-docker.pkg.dev/{project_id}/kedro/{image_name}:latest

  # Where run-once / schedule send the pipeline: vertex, or kfp (a self-hosted Kubeflow Pipelines, see the
  # kfp section at the end and docs/kubeflow.md).
  target: vertex

  # Pipeline root on Cloud Storage: run artefacts and the data passed between steps.
  root: gs://{project_id}-vertex-pipelines/{image_name}

  # Names the pipeline and its runs (spaces and capitals are fine: ids are derived safely).
  experiment_name: {image_name}
  # experiment_description: "What this experiment is about"
  # description: "Shown in the Vertex AI console"

  # Display name of the runs a schedule starts.
  scheduled_run_name: {image_name}-scheduled

  # Service account the pipeline runs as (needs roles/aiplatform.user and access to the root bucket).
  # service_account: pipelines@{project_id}.iam.gserviceaccount.com

  # Labels on every run; git sha, branch and PR number are added automatically when known.
  labels:
    team: data-science

  # Let Vertex AI reuse results of identical steps.
  caching: true

  # Declare the catalog datasets each step writes as output artifacts (lineage in Vertex ML Metadata).
  artifacts: false

  # Networking of the steps.
  network:
    # vpc: projects/PROJECT_NUMBER/global/networks/my-vpc
    host_aliases: []
    # - ip: 10.10.10.10
    #   hostnames: [mlflow.internal]

  # How Kedro nodes become Vertex steps: identity (one per node), tag (group.<name> tags),
  # auto (the steps with the least estimated wall time on Vertex; `kedro-vertex-ci plan` shows it).
  grouping:
    cls: auto
    params: {{}}
    # params:                   # auto's cost model (docs/grouping.md)
    #   step_overhead: 90       # seconds one step takes to start on Vertex
    #   parallelism: 8          # steps running at once
    #   duration_scale: 1.0     # Vertex machine vs. your run-local machine
    #   default_node_duration: 10
    # cls: tag
    # params:
    #   tag_prefix: "group."

  # Resources per __default__, tag, node name or group name (later wins in that order; names as written).
  resources:
    __default__:
      cpu: "1"
      memory: 4Gi
    # model_training:          # a node name, tag or group name
    #   cpu: 8
    #   memory: 30Gi
    #   gpu: 1
    #   accelerator: NVIDIA_TESLA_T4
    #   machine_type: n1-standard-8   # runs the step as a CustomJob on this machine (docs/placement.md)
    #   spot: true                    # Spot VMs (with machine_type)
    #   boot_disk_size_gb: 200
    #   retries: 2
    #   retry_backoff: 60s
    #   timeout: 3600
    #   caching: false
    #   image: europe-docker.pkg.dev/PROJECT/REPO/gpu@sha256:...  # this step's own image (pin by digest)

  # Accelerator type per tag/node/group (kedro-vertexai style); `accelerator:` above does the same.
  node_selectors: {{}}
  #   model_training:
  #     cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4

  # Config files generated in each step before its nodes run (e.g. credentials.yml with a fresh token).
  dynamic_config_providers: []
  # - cls: kedro_vertex_ci.dynamic_config.GoogleOAuthCredentialsProvider
  #   params:
  #     client_id: 123456789.apps.googleusercontent.com

  # MLflow (with kedro-mlflow in the project): request-header provider settings.
  # mlflow:
  #   request_header_provider_params:
  #     client_id: 123456789.apps.googleusercontent.com

  # Kedro pipeline run after the main one whatever its status (for notifications).
  # on_exit_pipeline: notify

  # Schedules: default_schedule, or one per Kedro pipeline name. Nothing is scheduled without a cron here
  # (or the Action's `cron` input): `kedro-vertex-ci schedule` and a push to the default branch create
  # exactly this schedule, replacing the previous one. Each scheduled run is billed: delete this block to
  # stop scheduling (the Action then only notes that nothing was scheduled).
  schedules:
    default_schedule:
      cron_expression: "0 3 * * *"  # every day at 03:00 in the timezone below
      timezone: Etc/UTC
      # start_time: "2026-01-01T00:00:00Z"
      # end_time: "2027-01-01T00:00:00Z"
      allow_queueing: false
      # max_run_count: 10
      max_concurrent_run_count: 1

# Cloud Build (`kedro-vertex-ci build`).
build:
  # image: {region}-docker.pkg.dev/{project_id}/kedro/{image_name}
  # staging_bucket: {project_id}-cloudbuild
  # region: {region}
  dockerfile: Dockerfile
  timeout: 1200
  # machine_type: E2_HIGHCPU_8
  # service_account: projects/{project_id}/serviceAccounts/build@{project_id}.iam.gserviceaccount.com

# Kubeflow Pipelines target (run_config.target: kfp), docs/kubeflow.md.
# kfp:
#   host: https://kubeflow.example.com/pipeline
#   namespace: my-profile
#   auth:
#     mode: dex            # none | token | iap | dex
#     # client_id: 1234-abc.apps.googleusercontent.com   (iap)
#     # service_account: kfp-user@{project_id}.iam.gserviceaccount.com   (iap)

# API endpoints (Private Service Connect / VPC-SC). Env KEDRO_VERTEX_CI_<NAME>_ENDPOINT wins.
endpoints: {{}}
#   vertex: https://{region}-aiplatform.googleapis.com
#   cloudbuild: https://cloudbuild.googleapis.com
#   storage: https://storage.googleapis.com
#   sts: https://sts.googleapis.com
#   iamcredentials: https://iamcredentials.googleapis.com
"""


KFP_AUTH_MODES = ("none", "token", "iap", "dex")
_KFP_COMMENTED = """# kfp:
#   host: https://kubeflow.example.com/pipeline
#   namespace: my-profile
#   auth:
#     mode: dex            # none | token | iap | dex
#     # client_id: 1234-abc.apps.googleusercontent.com   (iap)
#     # service_account: kfp-user@{project_id}.iam.gserviceaccount.com   (iap)
"""
_KFP_AUTH_LINES = {
    "none": "",
    "token": "    token_env: KFP_TOKEN            # the workflow passes the repository secret KFP_TOKEN\n",
    "iap": "    # client_id: 1234-abc.apps.googleusercontent.com   # default: $IAP_CLIENT_ID\n"
           "    service_account: kfp-user@{project_id}.iam.gserviceaccount.com   # its ID token passes IAP\n",
    "dex": "    # username_env: DEX_USERNAME     # the workflow passes the repository secrets\n"
           "    # password_env: DEX_PASSWORD     # KFP_DEX_USERNAME and KFP_DEX_PASSWORD under these names\n",
}


def render_template(project_id: str, region: str, project_name: str = "kedro-project", *,
                    kfp_host: str | None = None, kfp_auth: str = "dex") -> str:
    """The commented ``vertexai.yml`` for a project (valid as written); with ``kfp_host``, for that KFP target."""
    text = TEMPLATE.format(
        project_id=project_id, region=region, image_name=sanitize_name(project_name, max_length=60)
    )
    if kfp_host is None:
        return text
    active = (f"kfp:\n  host: {kfp_host}\n  # namespace: my-profile   # multi-user Kubeflow\n  auth:\n"
              f"    mode: {kfp_auth}\n" + _KFP_AUTH_LINES[kfp_auth].format(project_id=project_id))
    return text.replace("  target: vertex\n", "  target: kfp\n", 1).replace(
        _KFP_COMMENTED.format(project_id=project_id), active, 1)
