#!/usr/bin/env python3
"""A small RAG app on ogx-client (OGX's own client, 1.2+), with no tracing code but its one
top-level span, traced from the outside by the instrumentor (Python 3.12+):

    pip install ./instrumentation ogx-client==1.5.0 opentelemetry-distro==0.66b2 \\
        opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-instrumentation-httpx==0.66b2
    OTEL_SERVICE_NAME=ogx-client-app OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
    LLAMA_STACK_URL=http://localhost:8321 INFERENCE_MODEL=llama-cpp/gemma3-270m \\
    EMBEDDING_MODEL=llama-cpp-embeddings/all-MiniLM-L6-v2 \\
        opentelemetry-instrument python examples/ogx_client_app.py "How should a Node.js service handle SIGTERM?"

Each step and the span it becomes:

    the library Agent's streamed turn        invoke_agent (the Responses calls it makes inside it)
    a response that must search the store    invoke_agent, with execute_tool file_search under it
    a chat completion                        chat <model>
    an embedding of the question             embeddings <model>

The Agent sets no tool_choice, and a model as small as Gemma 3 270M does not search unless told
to: the second step asks for the file_search itself.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from ogx_client import OgxClient
from ogx_client.lib.agents.agent import Agent
from opentelemetry import trace

LLAMA_STACK_URL = os.environ.get("LLAMA_STACK_URL", "http://localhost:8321")
MODEL = os.environ.get("INFERENCE_MODEL", "llama-cpp/gemma3-270m")
EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "llama-cpp-embeddings/all-MiniLM-L6-v2")
QUESTION = "How should a Node.js service handle SIGTERM?"
DOCUMENT = (b"On SIGTERM a Node.js service should stop accepting connections, finish the requests in flight, "
            b"close its database pool and exit with status 0.")
INSTRUCTIONS = "Answer from the documents only, in one sentence."


def main(question: str = QUESTION) -> None:
    client = OgxClient(base_url=LLAMA_STACK_URL)
    with trace.get_tracer(__name__).start_as_current_span("ogx_client_app run"):
        store = client.vector_stores.create(name="example-store")
        uploaded = client.files.create(file=("shutdown.txt", DOCUMENT), purpose="assistants")
        try:
            attached = client.vector_stores.files.create(store.id, file_id=uploaded.id)
            while attached.status == "in_progress":
                time.sleep(0.2)
                attached = client.vector_stores.files.retrieve(store.id, uploaded.id)
            file_search = {"type": "file_search", "vector_store_ids": [store.id]}

            print(f"QUESTION: {question}\nAGENT: ", end="", flush=True)
            agent = Agent(client, model=MODEL, instructions=INSTRUCTIONS, tools=[file_search])
            session = agent.create_session("example-session")
            turn_response = None  # the turn's last response, stored on the server like any other
            try:
                for chunk in agent.create_turn(messages=[{"role": "user", "content": question}], session_id=session):
                    delta = getattr(chunk.event, "delta", None)
                    print(getattr(delta, "text", "") or "", end="", flush=True)
                    turn_response = chunk.response or turn_response
            except RuntimeError as error:  # what the Agent raises when the answer hit the server's token limit
                print(f" [{error}]", end="")

            response = client.responses.create(model=MODEL, input=question, instructions=INSTRUCTIONS,
                                               tools=[file_search], tool_choice={"type": "file_search"},
                                               max_output_tokens=64)
            print(f"\nSEARCHED: {response.output_text}")

            chat = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                                  max_tokens=32)
            print(f"CHAT: {chat.choices[0].message.content}")
            embedding = client.embeddings.create(model=EMBEDDING_MODEL, input=question)
            print(f"EMBEDDING: {len(embedding.data[0].embedding)} dimensions")
            for stored in filter(None, (response, turn_response)):
                client.responses.delete(stored.id)
            client.conversations.delete(session)
        finally:
            client.vector_stores.delete(store.id)
            client.files.delete(uploaded.id)
        print(f"Trace ID: {trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)}")


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client turns on a line per request
    main(" ".join(sys.argv[1:]) or QUESTION)
