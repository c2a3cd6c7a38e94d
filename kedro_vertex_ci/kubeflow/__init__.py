"""Kubeflow Pipelines as a second target: the same spec to a self-hosted KFP 2.x."""
