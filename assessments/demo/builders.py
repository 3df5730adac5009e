"""The demo's content and trace builders for `manage.py load_demo`: a RAG docs assistant's
questions, answers, documents and failures (data.json, next to this file) and the functions that
turn them into spans. Ids and every "random" choice come from fixed seeds."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

DEMO_EXPERIMENT = "rag-demo"
SECOND_EXPERIMENT = "sql-agent-dev"
DEFAULT_DEMO_KEY = "fh_demo_key_change_me_0000000000000000000000"
DEMO_KEY_LABEL = "demo key (rag-demo)"
MODEL = "gpt-4o-mini"
JUDGE = f"openai:/{MODEL}"
VECTOR_INDEX = "main.docs.mlflow_docs_chunks_index"


@dataclass
class QA:
    question: str
    answer: str
    docs: list[str]
    quality: str = "good"  # good | weak | bad: drives judge scores and thumbs
    tool: tuple[str, dict, object] | None = None  # (tool name, arguments, result)
    expected: str | None = None
    expected_facts: list[str] = field(default_factory=list)
    comment: str = ""  # an end user's words with their thumbs


def _load() -> dict:
    data = json.loads((Path(__file__).with_name("data.json")).read_text(encoding="utf-8"))
    data["qas"] = [QA(**{**qa, "tool": tuple(qa["tool"]) if qa["tool"] else None}) for qa in data["qas"]]
    return data


_DATA = _load()
SYSTEM_PROMPT: str = _DATA["system_prompt"]
# the knowledge base the retriever searches: id → (title, url, text)
DOCS: dict[str, tuple[str, str, str]] = {key: tuple(value) for key, value in _DATA["docs"].items()}
QAS: list[QA] = _DATA["qas"]
# index of a QA → index of the QA the same user asked next in the same session
FOLLOW_UPS: dict[int, int] = {int(key): value for key, value in _DATA["follow_ups"].items()}
# (question, failing span type, exception type, message)
FAILURES: list[tuple[str, str, str, str]] = [tuple(item) for item in _DATA["failures"]]
STACKS: dict[str, list[tuple]] = {key: [tuple(frame) for frame in frames] for key, frames in _DATA["stacks"].items()}
TONES: list[str] = _DATA["tones"]
HIGHLIGHTS: list[str] = _DATA["highlights"]
USERS = [f"user_{n:04d}" for n in (17, 42, 58, 73, 101, 128, 256, 311, 404, 512)]
RELEASES = [f"2.{n}.0" for n in range(23)] + [f"3.{n}.0" for n in range(14)]


def compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def stable_hex(*parts, length: int) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]


def words(text: str) -> int:
    return max(1, len(text.split()))


def exception_event(exc_type: str, message: str, frames, time_ns: int) -> dict:
    stack = (
        "Traceback (most recent call last):\n"
        + "".join(f'  File "{path}", line {line}, in {func}\n    {code}\n' for path, line, func, code in frames)
        + f"{exc_type}: {message}"
    )
    return {
        "name": "exception",
        "timestamp_ns": time_ns,
        "attributes": {
            "exception.type": exc_type,
            "exception.message": message,
            "exception.stacktrace": stack,
        },
    }


class TraceBuilder:
    """Spans of one trace, with deterministic ids and a running clock in nanoseconds."""

    def __init__(self, key: str, start: datetime):
        self.key = key
        self.trace_id = "tr-" + stable_hex("feedbackhub-demo", key, length=32)
        self.clock = int(start.timestamp() * 1e9)
        self.spans: list[dict] = []
        self.by_type: dict[str, str] = {}

    def span(
        self,
        name,
        span_type,
        parent=None,
        *,
        inputs=None,
        outputs=None,
        ms=10.0,
        attributes=None,
        status="OK",
        events=None,
        advance=True,
    ) -> dict:
        start = self.clock
        end = start + int(ms * 1e6)
        message = events[0]["attributes"]["exception.message"][:200] if status == "ERROR" and events else ""
        span = {
            "span_id": stable_hex(self.key, len(self.spans), length=16),
            "parent_span_id": parent["span_id"] if parent else None,
            "name": name,
            "span_type": span_type,
            "start_time_ns": start,
            "end_time_ns": end,
            "status_code": status,
            "status_message": message,
            "inputs": inputs,
            "outputs": outputs,
            "attributes": {"mlflow.spanType": span_type, **(attributes or {})},
            "events": events or [],
        }
        self.spans.append(span)
        self.by_type.setdefault(span_type, span["span_id"])
        if advance:
            self.clock = end
        return span

    def close(self, span: dict, status: str = "OK", events=None) -> None:
        """End a parent span after its children."""
        span["end_time_ns"] = self.clock + 2_000_000
        span["status_code"] = status
        if events:
            span["events"] = events
            span["status_message"] = events[0]["attributes"]["exception.message"][:200]
        self.clock = span["end_time_ns"]


def chat_request(messages, **extra) -> dict:
    return {"model": MODEL, "messages": messages, "temperature": 0.1, **extra}


def chat_response(key: str, message: dict, prompt_tokens: int, finish="stop") -> dict:
    completion_tokens = words(message.get("content") or "x") * 4 // 3 + 8
    return {
        "id": "chatcmpl-" + stable_hex("completion", key, prompt_tokens, length=24),
        "object": "chat.completion",
        "created": 0,
        "model": f"{MODEL}-2024-07-18",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def token_usage(response: dict) -> dict:
    usage = response["usage"]
    return {
        "mlflow.chat.tokenUsage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
        },
        "llm.model_name": MODEL,
    }


def retrieved(rng: random.Random, doc_ids: list[str]) -> list[dict]:
    """The retriever's top 4: the relevant documents first, then near misses with lower scores."""
    others = sorted(set(DOCS) - set(doc_ids))
    picks = doc_ids[:3] + rng.sample(others, 4 - len(doc_ids[:3]))
    results = []
    score = rng.uniform(0.86, 0.93)
    for rank, doc_id in enumerate(picks):
        title, uri, text = DOCS[doc_id]
        results.append(
            {
                "id": doc_id,
                "page_content": text,
                "metadata": {
                    "doc_uri": uri,
                    "title": title,
                    "chunk_id": f"{doc_id}#{rank}",
                    "score": round(score, 4),
                },
            }
        )
        score -= rng.uniform(0.03, 0.09) if doc_id in doc_ids else rng.uniform(0.12, 0.2)
    return results


def context_block(documents: list[dict]) -> str:
    return "\n\n".join(f"[{doc['id']}] {doc['metadata']['title']}\n{doc['page_content']}" for doc in documents)


def rag_trace(rng: random.Random, key: str, start: datetime, qa: QA, failure=None) -> TraceBuilder:
    """root CHAIN → embed (EMBEDDING) → vector_search (RETRIEVER) → [chat + TOOL + chat] or chat (CHAT_MODEL)."""
    builder = TraceBuilder(key, start)
    question = qa.question
    root = builder.span(
        "answer_question",
        "CHAIN",
        inputs={"question": question},
        ms=0,
        advance=False,
        attributes={"app.version": "1.4.2"},
    )
    builder.clock += 1_000_000
    builder.span(
        "embed_query",
        "EMBEDDING",
        root,
        inputs={"input": [question], "model": "databricks-gte-large-en"},
        outputs={"dimensions": 1024, "count": 1},
        ms=rng.uniform(25, 80),
    )
    fails_at = failure[1] if failure else None
    if fails_at == "RETRIEVER":
        event = exception_event(failure[2], failure[3], STACKS["RETRIEVER"], builder.clock + 30_000_000_000)
        builder.span(
            "vector_search",
            "RETRIEVER",
            root,
            inputs={"query": question, "num_results": 4},
            ms=30_000 + rng.uniform(0, 200),
            status="ERROR",
            events=[event],
            attributes={"vector_search.index": VECTOR_INDEX},
        )
        builder.close(root, "ERROR", [event])
        return builder
    documents = retrieved(rng, qa.docs)
    builder.span(
        "vector_search",
        "RETRIEVER",
        root,
        inputs={"query": question, "num_results": 4},
        outputs=documents,
        ms=rng.uniform(60, 350),
        attributes={"vector_search.index": VECTOR_INDEX},
    )
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"Context:\n{context_block(documents)}\n\nQuestion: {question}",
        },
    ]
    prompt_tokens = sum(words(m["content"]) for m in messages) * 4 // 3
    if fails_at == "CHAT_MODEL":
        event = exception_event(failure[2], failure[3], STACKS["CHAT_MODEL"], builder.clock + 400_000_000)
        builder.span(
            "ChatCompletion",
            "CHAT_MODEL",
            root,
            inputs=chat_request(messages),
            ms=rng.uniform(300, 900),
            status="ERROR",
            events=[event],
            attributes={"llm.model_name": MODEL},
        )
        builder.close(root, "ERROR", [event])
        return builder
    if qa.tool:
        tool_name, arguments, result = qa.tool
        call_id = "call_" + stable_hex("tool", key, length=20)
        tools = [
            {
                "type": "function",
                "function": {"name": tool_name, "parameters": {"type": "object"}},
            }
        ]
        first_message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tool_name, "arguments": compact_json(arguments)},
                }
            ],
        }
        response = chat_response(key + "-1", first_message, prompt_tokens, finish="tool_calls")
        builder.span(
            "ChatCompletion",
            "CHAT_MODEL",
            root,
            inputs=chat_request(messages, tools=tools),
            outputs=response,
            ms=rng.uniform(500, 1400),
            attributes=token_usage(response),
        )
        builder.span(
            tool_name,
            "TOOL",
            root,
            inputs=arguments,
            outputs=result,
            ms=rng.uniform(80, 900),
            attributes={"tool.call_id": call_id},
        )
        messages = [
            *messages,
            first_message,
            {"role": "tool", "tool_call_id": call_id, "content": compact_json(result)},
        ]
        prompt_tokens += 60
    final = {"role": "assistant", "content": qa.answer}
    response = chat_response(key, final, prompt_tokens)
    builder.span(
        "ChatCompletion",
        "CHAT_MODEL",
        root,
        inputs=chat_request(messages),
        outputs=response,
        ms=rng.uniform(700, 3800),
        attributes=token_usage(response),
    )
    root["outputs"] = qa.answer
    builder.close(root)
    return builder


def agent_trace(rng: random.Random, key: str, start: datetime) -> TraceBuilder:
    """An agent loop over every release: 150 spans (root, 37 × [step, plan, tool, retrieval], final answer)."""
    builder = TraceBuilder(key, start)
    task = "Which MLflow releases since 2.0 changed the tracing or feedback APIs? One line per release."
    root = builder.span(
        "release_notes_agent",
        "AGENT",
        inputs={"task": task},
        ms=0,
        advance=False,
        attributes={"agent.max_iterations": 40},
    )
    findings = []
    for step, version in enumerate(RELEASES):
        chain = builder.span(
            f"step_{step + 1}",
            "CHAIN",
            root,
            inputs={"version": version},
            ms=0,
            advance=False,
        )
        builder.clock += 500_000
        thought = f"Next I need the release notes of MLflow {version}."
        plan = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{stable_hex(key, step, length=12)}",
                    "type": "function",
                    "function": {
                        "name": "fetch_release_notes",
                        "arguments": compact_json({"version": version}),
                    },
                }
            ],
        }
        response = chat_response(f"{key}-{step}", plan, 900 + 120 * step, finish="tool_calls")
        builder.span(
            "plan_next_step",
            "CHAT_MODEL",
            chain,
            ms=rng.uniform(400, 1200),
            inputs=chat_request(
                [
                    {
                        "role": "system",
                        "content": "You are a release-notes research agent.",
                    },
                    {"role": "user", "content": task},
                    {"role": "assistant", "content": thought},
                ]
            ),
            outputs=response,
            attributes=token_usage(response),
        )
        highlight = HIGHLIGHTS[rng.randrange(len(HIGHLIGHTS))]
        notes = {
            "version": version,
            "highlights": [highlight],
            "bug_fixes": rng.randint(8, 60),
        }
        builder.span(
            "fetch_release_notes",
            "TOOL",
            chain,
            inputs={"version": version},
            outputs=notes,
            ms=rng.uniform(60, 300),
        )
        builder.span(
            "search_docs",
            "RETRIEVER",
            chain,
            inputs={"query": f"MLflow {version} {highlight}"},
            outputs=retrieved(rng, ["doc-tracing-overview"]),
            ms=rng.uniform(40, 160),
            attributes={"vector_search.index": VECTOR_INDEX},
        )
        builder.close(chain)
        if "tracing" in highlight or "judge" in highlight or "trace" in highlight:
            findings.append(f"{version}: {highlight}")
    answer = "Releases that touched tracing or feedback:\n" + "\n".join(findings or ["none found"])
    final = {"role": "assistant", "content": answer}
    response = chat_response(key + "-final", final, 6200)
    builder.span(
        "write_answer",
        "CHAT_MODEL",
        root,
        inputs=chat_request([{"role": "user", "content": task}]),
        outputs=response,
        ms=rng.uniform(2000, 4000),
        attributes=token_usage(response),
    )
    root["outputs"] = answer
    builder.close(root)
    return builder
