"""Property-based fuzzing of the native API from its own OpenAPI schema (schemathesis, in process).

Every operation gets generated requests, sent with a real API key; about half of them name the
trace and assessment that exist, so the fuzzer gets past the 404s. No answer may be a 5xx, and
every answer must match the schema: a documented status code, content type, headers and body.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from feedbackhub.wsgi import application

from .factories import make_api_key, make_experiment, make_feedback, make_trace

TRACE_ID = "tr-" + "f" * 32
ASSESSMENT_ID = "a-" + "f" * 32
RAW_KEY = "fh_fuzz_key_0000000000000000000000000000"
KNOWN = {"trace_id": TRACE_ID, "assessment_id": ASSESSMENT_ID}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half of the cases use the ids that exist (the other half keep the generated ones)."""
    known = {name: KNOWN[name] for name in path_parameters or () if name in KNOWN}
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


@pytest.fixture
def keep_test_connection():
    """Calling the WSGI app directly fires close_old_connections, which would close the test
    transaction's PostgreSQL connection; Django's test client disconnects these receivers too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_data(db):
    from traces.models import ApiKey

    experiment = make_experiment("fuzz")
    key, _ = make_api_key(experiment)
    ApiKey.objects.filter(pk=key.pk).update(key_hash=ApiKey.hash(RAW_KEY))
    trace = make_trace(experiment, spans=3, trace_id=TRACE_ID)
    make_feedback(trace, assessment_id=ASSESSMENT_ID, value=0.5, source_type="LLM_JUDGE", source_id="judge")
    make_feedback(trace, name="rating", value=4)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_answers_every_generated_request_within_its_schema(case, fuzz_data, keep_test_connection):
    case.call_and_validate(headers={"Authorization": f"Bearer {RAW_KEY}"}, checks=CHECKS)
