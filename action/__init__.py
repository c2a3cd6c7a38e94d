"""The kedro-vertex-ci GitHub Action: ``python -m action`` inside the action's container (see action.yml)."""
