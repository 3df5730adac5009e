"""The write layer's exceptions beyond Django's ValidationError and PermissionDenied.

Each carries what `feedbackhub.errors.translate` needs: `http_status` and `mlflow_code`.
"""

from __future__ import annotations

from traces.services import Conflict

__all__ = ["Conflict", "DuplicateId", "StaleVersion"]


class StaleVersion(Conflict):
    """The caller edited an older version than the stored one (answered with 412)."""

    http_status = 412

    def __init__(self, assessment):
        self.assessment = assessment
        super().__init__(
            f"Assessment {assessment.assessment_id} changed since you read it (now version {assessment.version})."
        )


class DuplicateId(Conflict):
    """A client-chosen assessment id that is already taken (stored or held)."""

    mlflow_code = "RESOURCE_ALREADY_EXISTS"
    mlflow_status = 400  # as MLflow answers it; the native API says 409

    def __init__(self, assessment_id: str):
        self.assessment_id = assessment_id
        super().__init__(f"An assessment with ID '{assessment_id}' already exists.")
