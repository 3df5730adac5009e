"""Token usage and cost of LLM spans and traces, derived as MLflow's tracking server does.

Per span (`derive`, called for every stored span whatever the way in), under MLflow's own
attribute names so that the mlflow client reads them back unchanged:

- `mlflow.chat.tokenUsage` {"input_tokens", "output_tokens", "total_tokens", and the cache
  counts when given}: kept when the client set it, else read from OpenInference
  (`llm.token_count.prompt|completion|total`), OpenTelemetry GenAI (`gen_ai.usage.input_tokens|
  output_tokens`, the older `gen_ai.usage.prompt_tokens|completion_tokens`) or the OpenAI
  response in the span's outputs (`usage.prompt_tokens|completion_tokens` or the Responses
  API's `usage.input_tokens|output_tokens`);
- `mlflow.llm.model` / `mlflow.llm.provider`: from the same conventions, or `model` in the
  span's inputs or outputs;
- `mlflow.llm.cost` {"input_cost", "output_cost", "total_cost"} in USD: usage × the model's
  price (`traces/prices.json`, overridden by settings.FEEDBACKHUB_MODEL_PRICES). AGENT spans are
  not priced (their usage is a rollup of the LLM calls under them), as in MLflow.

Per trace (`aggregate`): the sums over the spans that carry usage (or cost), skipping a span
whose ancestor already carries it (MLflow's DFS de-duplication: an LLM span that wraps another
LLM call is counted once). Stored as trace metadata `mlflow.trace.tokenUsage` and
`mlflow.trace.cost` (JSON text, as MLflow does, so `trace.info.token_usage` works) and in the
Trace columns `total_tokens` and `cost`, which the filter language and the lists sort by.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from functools import lru_cache, partial
from pathlib import Path

from django.conf import settings

from feedbackhub import values

CHAT_USAGE = "mlflow.chat.tokenUsage"
LLM_MODEL = "mlflow.llm.model"
LLM_PROVIDER = "mlflow.llm.provider"
LLM_COST = "mlflow.llm.cost"
TRACE_TOKEN_USAGE = "mlflow.trace.tokenUsage"
TRACE_COST = "mlflow.trace.cost"

INPUT, OUTPUT, TOTAL = "input_tokens", "output_tokens", "total_tokens"
CACHE_READ, CACHE_WRITE = "cache_read_input_tokens", "cache_creation_input_tokens"
COST_KEYS = ("input_cost", "output_cost", "total_cost")

# (input, output, total, cache read, cache write) attribute names, first convention found wins.
TOKEN_CONVENTIONS = (
    (
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.total",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write",
    ),
    (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.total_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
    ),
    ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "llm.usage.total_tokens", None, None),
)
MODEL_KEYS = (
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
    "embedding.model_name",
    "gen_ai.response.model",
    "gen_ai.request.model",
)
PROVIDER_KEYS = ("llm.provider", "gen_ai.provider.name", "gen_ai.system")
PRICES_FILE = Path(__file__).with_name("prices.json")
# Attribute values from the mlflow client arrive as JSON text.
_json_document = partial(values.parsed_json, documents_only=True)


def _count(value) -> int | None:
    value = _json_document(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**62 else None
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**62:
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 19:
        return int(value)
    return None


def _usage(input_tokens, output_tokens, total_tokens, cache_read=None, cache_write=None) -> dict | None:
    input_tokens, output_tokens, total_tokens = _count(input_tokens), _count(output_tokens), _count(total_tokens)
    if input_tokens is None and output_tokens is None and total_tokens is None:
        return None
    if total_tokens is None:
        # MLflow leaves the total out when one side is missing; a total of what is known is more useful.
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
    usage = {
        key: n for key, n in ((INPUT, input_tokens), (OUTPUT, output_tokens), (TOTAL, total_tokens)) if n is not None
    }
    for key, value in ((CACHE_READ, cache_read), (CACHE_WRITE, cache_write)):
        if (count := _count(value)) is not None:
            usage[key] = count
    return usage


def usage_dict(value) -> dict | None:
    """A tokenUsage value (dict or its JSON text) with whole, non-negative counts; None otherwise."""
    value = _json_document(value)
    if not isinstance(value, dict):
        return None
    return _usage(value.get(INPUT), value.get(OUTPUT), value.get(TOTAL), value.get(CACHE_READ), value.get(CACHE_WRITE))


def cost_dict(value) -> dict | None:
    value = _json_document(value)
    if not isinstance(value, dict):
        return None
    cost = {}
    for key in COST_KEYS:
        item = value.get(key)
        if isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) and item >= 0:
            cost[key] = float(item)
    return cost or None


def _response_usage(outputs) -> dict | None:
    """The `usage` of an OpenAI response (Chat Completions or Responses API) in the span outputs."""
    usage = outputs.get("usage") if isinstance(outputs, dict) else None
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"), cached)
    return _usage(usage.get(INPUT), usage.get(OUTPUT), usage.get(TOTAL), cached)


def _first_text(attributes: dict, keys) -> str | None:
    for key in keys:
        value = _json_document(attributes.get(key))
        if isinstance(value, str) and value.strip():
            return value.strip()[:250]
    return None


def _payload_model(value) -> str | None:
    value = _json_document(value)
    model = value.get("model") if isinstance(value, dict) else None
    return model.strip()[:250] if isinstance(model, str) and model.strip() else None


def derive(span: dict) -> None:
    """Add MLflow's usage, model, provider and cost attributes to a cleaned span dict (in place)."""
    attributes = span["attributes"]
    usage = usage_dict(attributes.get(CHAT_USAGE))
    if usage is None:
        for keys in TOKEN_CONVENTIONS:
            usage = _usage(*(attributes.get(key) if key else None for key in keys))
            if usage is not None:
                break
        else:
            usage = _response_usage(span["outputs"])
    if usage is not None:
        attributes[CHAT_USAGE] = usage
    model = (
        _first_text(attributes, (LLM_MODEL,))
        or _first_text(attributes, MODEL_KEYS)
        or _payload_model(span["inputs"])
        or _payload_model(span["outputs"])
    )
    if model is not None:
        attributes[LLM_MODEL] = model
    provider = _first_text(attributes, (LLM_PROVIDER, *PROVIDER_KEYS))
    if provider is not None:
        attributes[LLM_PROVIDER] = provider
    cost = cost_dict(attributes.get(LLM_COST))
    if cost is None and usage is not None and model is not None and span["span_type"] != "AGENT":
        cost = price(model, usage, provider)
    if cost is not None:
        attributes[LLM_COST] = cost
    elif LLM_COST in attributes:
        del attributes[LLM_COST]


# --- prices ------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _shipped_prices(path: str) -> dict:
    return json.loads(Path(path).read_text())["models"]


def prices() -> dict[str, dict]:
    """Model name (lower case) → USD per million tokens (input, output, cache_read): the table that
    ships with FeedbackHub, overridden model by model by settings.FEEDBACKHUB_MODEL_PRICES."""
    overrides = getattr(settings, "FEEDBACKHUB_MODEL_PRICES", None) or {}
    return {**_shipped_prices(str(PRICES_FILE)), **{name.lower(): entry for name, entry in overrides.items()}}


def model_price(model: str, provider: str | None = None) -> dict | None:
    """The price entry of `model`: its exact name (also as `provider/model` and without a
    `provider/` prefix), else the longest listed name it starts with (dated versions such as
    gpt-4o-mini-2024-07-18)."""
    table = prices()
    name = model.lower()
    names = [f"{provider.lower()}/{name}"] if provider else []
    names += [name, name.split("/", 1)[-1]]
    for candidate in names:
        if candidate in table:
            return table[candidate]
    prefixes = [listed for listed in table if any(candidate.startswith(listed) for candidate in names)]
    return table[max(prefixes, key=len)] if prefixes else None


def price(model: str, usage: dict, provider: str | None = None) -> dict | None:
    """{"input_cost", "output_cost", "total_cost"} in USD, or None for an unknown model or no tokens."""
    entry = model_price(model, provider)
    input_tokens, output_tokens = usage.get(INPUT, 0), usage.get(OUTPUT, 0)
    if entry is None or not (input_tokens or output_tokens):
        return None
    per_token = {key: float(value) / 1_000_000 for key, value in entry.items() if isinstance(value, (int, float))}
    cached = min(usage.get(CACHE_READ, 0), input_tokens)
    input_cost = (input_tokens - cached) * per_token.get("input", 0.0) + cached * per_token.get(
        "cache_read", per_token.get("input", 0.0)
    )
    output_cost = output_tokens * per_token.get("output", 0.0)
    return {"input_cost": input_cost, "output_cost": output_cost, "total_cost": input_cost + output_cost}


# --- per trace ---------------------------------------------------------------------------------


def node(span: dict) -> tuple:
    """(span_id, parent_span_id, usage, cost) of a derived span dict, for `aggregate`."""
    attributes = span["attributes"]
    return span["span_id"], span["parent_span_id"], attributes.get(CHAT_USAGE), attributes.get(LLM_COST)


def has_usage(span: dict) -> bool:
    return CHAT_USAGE in span["attributes"] or LLM_COST in span["attributes"]


def aggregate(nodes) -> tuple[dict | None, dict | None]:
    """Trace totals (usage, cost) over (span_id, parent_span_id, usage, cost) rows, each kind counted
    on the highest spans that carry it (MLflow's de-duplication of nested LLM spans)."""
    nodes = list(nodes)
    return _sum(nodes, 2, (INPUT, OUTPUT, TOTAL), (CACHE_READ, CACHE_WRITE), usage_dict), _sum(
        nodes, 3, COST_KEYS, (), cost_dict
    )


def _sum(nodes: list, column: int, keys, optional_keys, parse):
    ids = {row[0] for row in nodes}
    children = defaultdict(list)
    roots = []
    for row in nodes:
        (children[row[1]] if row[1] and row[1] in ids else roots).append(row)
    totals = dict.fromkeys(keys, 0)
    found = False
    stack = [(row, False) for row in roots]
    seen = set()
    while stack:
        row, covered = stack.pop()
        if row[0] in seen:  # a cycle in hostile parent ids
            continue
        seen.add(row[0])
        data = parse(row[column]) if row[column] is not None else None
        if data is not None and not covered:
            found = True
            for key in keys:
                totals[key] += data.get(key, 0)
            for key in optional_keys:
                if key in data:
                    totals[key] = totals.get(key, 0) + data[key]
        stack.extend((child, covered or data is not None) for child in children.get(row[0], ()))
    return totals if found else None
