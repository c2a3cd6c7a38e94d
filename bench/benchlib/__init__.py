"""The benchmark harness behind ``make bench``: whole-process measures of kedro-vertex-ci vs kedro-vertexai 1.0.

``procs`` runs and times processes, ``measures`` holds one function per measure of issue 6, ``report`` writes
``docs/benchmarks.md`` and the plot. ``bench/run_all.py`` ties them together.
"""
