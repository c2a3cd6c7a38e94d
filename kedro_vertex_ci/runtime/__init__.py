"""The step runtime: what a compiled step runs inside the project's image (``kedro-vertex-ci step``).

``main`` parses the step's argv and runs it, ``session`` starts Kedro once, ``intermediate`` carries
memory datasets between steps under the pipeline root, ``codec`` serialises them, and ``resolvers`` makes
run values (``${vertex:run_id}`` …) available to Kedro config.
"""
