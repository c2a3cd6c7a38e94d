"""Google Cloud edges: credentials, Cloud Build, Vertex AI runs and schedules, storage uploads.

Every module here takes plain values (project, region, endpoints, credentials) and returns values; none of
them reads the environment except ``auth`` and ``endpoints`` (explicitly, from a mapping passed in), and the
Google client libraries are imported inside functions so that the CLI starts fast.
"""
