"""Load with the full mlflow client (run by .venv-mlflow's python, not by pytest):
`python mlflow_load.py <traces> <threads> <experiment name>`; the tracking URI and token come from
MLFLOW_TRACKING_URI / MLFLOW_TRACKING_TOKEN. Each trace has a root span, an LLM span with token
usage and a retriever span. Prints one line `RESULT=<json>` with the trace ids and timings."""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import mlflow

COUNT, THREADS, EXPERIMENT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SPANS_PER_TRACE = 3


@mlflow.trace(name="answer")
def answer(question: str) -> str:
    with mlflow.start_span("retrieve", span_type="RETRIEVER") as span:
        span.set_inputs({"query": question})
        span.set_outputs([{"page_content": "doc", "metadata": {"doc_uri": "uri"}}])
    with mlflow.start_span("llm", span_type="CHAT_MODEL") as span:
        span.set_inputs({"messages": [{"role": "user", "content": question}], "model": "gpt-4o-mini"})
        span.set_outputs({"choices": [{"message": {"role": "assistant", "content": "42"}}]})
        span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})
    return "42"


def one(n: int) -> str:
    answer(f"question {n}")
    return mlflow.get_last_active_trace_id(thread_local=True)


def main() -> None:
    mlflow.set_experiment(EXPERIMENT)
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(one, range(COUNT)))
    produced = time.monotonic() - started
    mlflow.flush_trace_async_logging()
    flushed = time.monotonic() - started
    print(
        "RESULT="
        + json.dumps({"ids": ids, "spans_per_trace": SPANS_PER_TRACE, "produced_s": produced, "flushed_s": flushed})
    )


if __name__ == "__main__":
    main()
