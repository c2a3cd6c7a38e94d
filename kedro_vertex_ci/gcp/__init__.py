"""Google Cloud edges: credentials, Cloud Build, Vertex AI runs and schedules, storage uploads.

Every module here takes plain values (project, region, endpoints, credentials) and returns values. Nothing
reads ``os.environ`` or prints: ``auth``, ``endpoints`` and ``names.git_context`` take the environment as a
mapping passed in, and progress goes through callbacks. The Google client libraries are imported inside
functions so that the CLI starts fast. ``kedro_vertex_ci.commands.cloud`` is the one place that glues the
config, the compiler and these clients together.
"""
