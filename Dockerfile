# The image of the kedro-vertex-ci GitHub Action (docs/action.md). Releases publish it prebuilt and pinned
# by digest (scripts/release-action-image.sh), so workflows pull it instead of building this file per job.
# BASE_IMAGE is pinned by digest; tests build FROM an offline base and a wheelhouse in wheels/.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="kedro-vertex-action" \
      org.opencontainers.image.description="Build, run and schedule Kedro pipelines on Vertex AI from GitHub" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEDRO_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false \
    PYTHONPATH=/opt/kedro-vertex-action/src \
    PATH=/opt/kedro-vertex-action/venv/bin:$PATH

WORKDIR /opt/kedro-vertex-action/src
COPY . .

# A venv keeps the project's requirements (installed by the action before compiling) apart from Debian's
# Python. With a wheelhouse in the context (offline builds) pip never touches an index.
RUN python3 -m venv /opt/kedro-vertex-action/venv \
    && if [ -d wheels ]; then set -- --no-index --find-links wheels; fi \
    && pip install --no-cache-dir "$@" . \
    && rm -rf wheels build ./*.egg-info \
    && python -m action --version

# GitHub runs container actions as root with the workspace mounted at /github/workspace (no USER here).
# -P: never import an `action/` folder from the user's workspace instead of ours.
ENTRYPOINT ["python", "-P", "-m", "action"]
