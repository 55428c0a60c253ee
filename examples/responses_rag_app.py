#!/usr/bin/env python3
"""The same RAG app on Llama Stack 0.4+ and OGX: files in a vector store, the Responses API with
file_search — in plain llama-stack-client, no tracing code, traced from the outside:

    OTEL_SERVICE_NAME=responses-rag-app OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
    LLAMA_STACK_URL=http://localhost:8321 INFERENCE_MODEL=llama-cpp/gemma3-270m \\
        opentelemetry-instrument python examples/responses_rag_app.py

One invoke_agent per question, with the execute_tool file_search the server ran under it.
The client pinned in requirements.txt (0.2.12) has these routes only under /v1/openai/v1,
which newer servers do not serve, so this app calls them through the client's generic
post/get/delete, without the version header newer servers refuse (HTTP 426) — as the
project's script does; the instrumentor traces those calls all the same.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from llama_stack_client import LlamaStackClient, Stream
from llama_stack_client._types import Omit
from opentelemetry import trace

LLAMA_STACK_URL = os.environ.get("LLAMA_STACK_URL", "http://localhost:8321")
MODEL = os.environ.get("INFERENCE_MODEL", "llama-cpp/gemma3-270m")
QUESTIONS = ("Should I use npm to start a node.js application?", "How should a Node.js service handle SIGTERM?")
DOCUMENTS = {
    "starting.txt": "Do not start a Node.js application with npm start in production: run node server.js "
                    "directly, so that signals such as SIGTERM reach the node process.",
    "shutdown.txt": "On SIGTERM a Node.js service should stop accepting connections, finish the requests in "
                    "flight, close its database pool and exit with status 0.",
}
NO_VERSION_HEADER = {"X-LlamaStack-Client-Version": Omit()}


def main(questions: tuple[str, ...] | list[str] = QUESTIONS) -> None:
    client = LlamaStackClient(base_url=LLAMA_STACK_URL)

    def call(method: str, path: str, *, headers: dict | None = None, **kwargs):
        options = {"headers": {**NO_VERSION_HEADER, **(headers or {})}}
        return getattr(client, method)(path, cast_to=object, options=options, **kwargs)

    with trace.get_tracer(__name__).start_as_current_span("responses_rag_app run"):
        store = call("post", "/v1/vector_stores", body={"name": "example-store"})
        files, responses = [], []
        try:
            for name, text in DOCUMENTS.items():
                uploaded = call("post", "/v1/files", body={"purpose": "assistants"},
                                files=[("file", (name, text.encode(), "text/plain"))],
                                headers={"Content-Type": "multipart/form-data"})
                files.append(uploaded["id"])
                attached = call("post", f"/v1/vector_stores/{store['id']}/files", body={"file_id": uploaded["id"]})
                while attached.get("status") == "in_progress":
                    time.sleep(0.2)
                    attached = call("get", f"/v1/vector_stores/{store['id']}/files/{attached['id']}")
            previous = None
            for question in questions:
                print(f"QUESTION: {question}\nANSWER: ", end="", flush=True)
                body = {"model": MODEL, "input": question, "stream": True,
                        "instructions": "Answer from the documents only, in two sentences.",
                        "tools": [{"type": "file_search", "vector_store_ids": [store["id"]]}],
                        "tool_choice": {"type": "file_search"}, "include": ["file_search_call.results"]}
                if previous:
                    body["previous_response_id"] = previous
                with call("post", "/v1/responses", body=body, stream=True, stream_cls=Stream[object]) as events:
                    for event in events:
                        if event.get("type") == "response.output_text.delta":
                            print(event["delta"], end="", flush=True)
                        previous = (event.get("response") or {}).get("id") or previous
                responses.append(previous)
                print()
        finally:
            for response_id in filter(None, responses):
                call("delete", f"/v1/responses/{response_id}")
            call("delete", f"/v1/vector_stores/{store['id']}")
            for file_id in files:
                call("delete", f"/v1/files/{file_id}")
        print(f"Trace ID: {trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)}")


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's import turns on a line per request
    main(sys.argv[1:] or QUESTIONS)
