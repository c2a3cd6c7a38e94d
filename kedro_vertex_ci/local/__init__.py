"""Local dry run: interpret a compiled PipelineSpec and run its steps on this machine (``run-local``).

``specgraph`` and ``placeholders`` are the pure core (spec → task graph → command lines); ``executor`` schedules;
``runners`` start processes or containers; ``run`` ties one run together; ``progress`` is what a person sees.
"""
