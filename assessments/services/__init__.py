"""Every write to an assessment, one module per concern; surfaces call the verbs only.

    validation   the one validator (single, batch and held writes; per-experiment rules plug in)
    verbs        create / update / override / delete / rate: each takes every decision
    permissions  can_change / can_override (the verbs check them, the panel's buttons ask them)
    held         feedback held until its trace or span arrives: hold, update, delete, attach, expire
    batch        many creates at once (the batch endpoint)
    rows         one assessment row: build, insert with idempotent replay, invalidate
    fastsql      single-statement inserts for the hot paths (PostgreSQL)
    revisions    the audit rows every verb writes
    errors       Conflict, StaleVersion, DuplicateId

Entry points (HTMX forms, native API, batch, MLflow protocol, OTLP evaluation events,
end-user tokens, admin) translate their input into one call with an `Actor` and the
`channel` the change came through.
"""

from .batch import MAX_BATCH_ITEMS, BatchValidationError, log_feedback_batch
from .errors import Conflict, DuplicateId, StaleVersion
from .held import attach as attach_held
from .held import expire as expire_held
from .permissions import can_change, can_override
from .validation import EDITABLE_FIELDS
from .verbs import (
    CREATED,
    HELD,
    REPLAYED,
    Created,
    create,
    delete,
    log_expectation,
    log_feedback,
    override,
    rate,
    update,
)

# The names the verbs had before the package (callers outside the surfaces still use them).
update_assessment = update
override_feedback = override
delete_assessment = delete

__all__ = [
    "CREATED",
    "EDITABLE_FIELDS",
    "HELD",
    "MAX_BATCH_ITEMS",
    "REPLAYED",
    "BatchValidationError",
    "Conflict",
    "Created",
    "DuplicateId",
    "StaleVersion",
    "attach_held",
    "can_change",
    "can_override",
    "create",
    "delete",
    "delete_assessment",
    "expire_held",
    "log_expectation",
    "log_feedback",
    "log_feedback_batch",
    "override",
    "override_feedback",
    "rate",
    "update",
    "update_assessment",
]
