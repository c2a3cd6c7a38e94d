"""run-local fixtures: the GCS emulator is the step runtime's (one definition for the whole suite)."""

from tests.runtime.conftest import BUCKET, gcs_emulator  # noqa: F401 - re-exported fixture

__all__ = ["BUCKET", "gcs_emulator"]
