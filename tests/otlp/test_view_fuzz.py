"""Whatever an OTLP/JSON body holds, /v1/traces answers 200 or a 4xx, and a 4xx stores nothing."""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings

from traces.models import Span, Trace

from ..mlflow.test_fuzz import json_values, mutations

pytestmark = pytest.mark.django_db

TEMPLATE = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": "0123456789abcdef0123456789abcdef",
                            "spanId": "0000000000000001",
                            "name": "root",
                            "kind": 1,
                            "startTimeUnixNano": "1790000000000000000",
                            "endTimeUnixNano": "1790000000100000000",
                            "status": {"code": 1, "message": ""},
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "input.value", "value": {"stringValue": '{"q": 1}'}},
                            ],
                            "events": [
                                {
                                    "name": "gen_ai.evaluation.result",
                                    "timeUnixNano": "1790000000050000000",
                                    "attributes": [
                                        {"key": "gen_ai.evaluation.name", "value": {"stringValue": "relevance"}},
                                        {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": 0.5}},
                                    ],
                                }
                            ],
                        }
                    ]
                }
            ],
        }
    ]
}


def test_mutated_otlp_json_never_500(api_key):
    client = Client()
    headers = {"Authorization": f"Bearer {api_key[1]}"}

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=mutations(TEMPLATE) | json_values)
    def check(body):
        before = Trace.objects.count(), Span.objects.count()
        response = client.post("/v1/traces", json.dumps(body), content_type="application/json", headers=headers)
        assert response.status_code in (200, 400, 404, 409, 413, 415), response.content
        if response.status_code != 200:
            assert (Trace.objects.count(), Span.objects.count()) == before

    check()
