"""kedro-vertex-ci: ship Kedro pipelines to Vertex AI Pipelines from GitHub."""

__version__ = "0.1.0"
