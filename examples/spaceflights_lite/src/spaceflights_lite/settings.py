"""Project settings (Kedro defaults, plus one line: see below)."""

# kedro-mlflow registers its hooks in every project of an environment where it is installed (kedro-vertex-ci's
# `mlflow` extra installs it); this example does not track experiments, so it opts out.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")  # the name as its wheel spells it varies

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
