"""The demo experiments' definitions: a rubric for every name `load_demo` writes.

Called by `manage.py load_demo` before it writes any feedback, so the demo's assessments
carry their `definition_version`; names already defined are left alone (reruns add nothing).
"""

from __future__ import annotations

from traces.access import Actor
from traces.models import Experiment

from . import services
from .models import Definition

SCORE = {"type": "number", "min": 0, "max": 1}
DEMO_DEFINITIONS = {
    "rag-demo": [
        {
            "name": "user_satisfaction",
            "type": "boolean",
            "description": "Thumbs up if the answer solved the user's problem.",
        },
        {
            "name": "rating",
            "type": "number",
            "min": 1,
            "max": 5,
            "integer": True,
            "levels": {"1": "Wrong or harmful", "2": "Mostly wrong", "3": "Partly right", "4": "Right", "5": "Perfect"},
            "description": "How good is the answer overall, read as a support engineer would?",
        },
        {**SCORE, "name": "relevance", "description": "LLM judge: does the answer address the question (0–1)?"},
        {
            **SCORE,
            "name": "retrieval_relevance",
            "description": "LLM judge: are the retrieved documents relevant (0–1)?",
        },
        {
            "name": "tone",
            "type": "category",
            "options": [
                {"value": "professional", "label": "Professional", "description": "Neutral and precise"},
                {"value": "friendly", "label": "Friendly", "description": "Warm, still on topic"},
                {"value": "concise", "label": "Concise", "description": "Short and to the point"},
                {"value": "too_technical", "label": "Too technical", "description": "Jargon the user did not ask for"},
            ],
            "description": "The answer's tone.",
        },
        {
            "name": "format_check",
            "type": "json",
            "json_schema": {
                "type": "object",
                "required": ["has_citation", "word_count", "passed"],
                "properties": {
                    "has_citation": {"type": "boolean"},
                    "word_count": {"type": "integer", "minimum": 0},
                    "code_blocks": {"type": "integer", "minimum": 0},
                    "passed": {"type": "boolean"},
                },
            },
            "description": "Code check of the answer's format.",
        },
        {
            "name": "cited_doc_ids",
            "type": "json",
            "json_schema": {"type": "array", "items": {"type": "string"}},
            "description": "The documents the answer cites.",
        },
        {
            "name": "expected_answer",
            "kind": "expectation",
            "type": "text",
            "max_length": 4000,
            "description": "The answer a good assistant gives.",
        },
        {
            "name": "expected_facts",
            "kind": "expectation",
            "type": "json",
            "json_schema": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "description": "Facts a correct answer states.",
        },
    ],
    "sql-agent-dev": [
        {"name": "sql_executes", "type": "boolean", "description": "Code check: the SQL runs on a dry-run database."},
    ],
}


def define_demo(experiment: Experiment, actor: Actor) -> int:
    """Create the demo definitions of `experiment` that do not exist yet; returns how many."""
    existing = set(Definition.objects.filter(experiment=experiment).values_list("name", flat=True))
    created = 0
    for spec in DEMO_DEFINITIONS.get(experiment.name, ()):
        if spec["name"] not in existing:
            services.create_definition(experiment=experiment, actor=actor, **spec)
            created += 1
    return created
