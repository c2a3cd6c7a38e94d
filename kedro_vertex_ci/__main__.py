"""``python -m kedro_vertex_ci`` = the ``kedro-vertex-ci`` command."""

from .entry import main

main()
