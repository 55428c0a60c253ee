#!/usr/bin/env python3
"""A RAG agent in plain llama-stack-client — no tracing code — traced from the outside.

The app a reader already has: a vector DB with a few documents, an agent whose tool is
builtin::rag's knowledge_search over it, and two questions whose answers stream. Run it under
opentelemetry-instrument, with this project installed (`pip install -r requirements.txt .`):

    OTEL_SERVICE_NAME=agent-rag-app OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
    LLAMA_STACK_URL=http://localhost:8321 INFERENCE_MODEL=gemma3-270m \\
        opentelemetry-instrument python examples/agent_rag_app.py ["another question" ...]

and the trace holds create_agent, create_session, one invoke_agent per question with the
execute_tool knowledge_search the server ran, the HTTP calls under them and the server's spans
under those. The one OpenTelemetry line here is the API's top-level span, which makes the run
one trace instead of one per call; opentelemetry-instrument sets the SDK up.
(Llama Stack 0.2.x; responses_rag_app.py is the same app on 0.4+ and OGX.)
"""

from __future__ import annotations

import logging
import os
import sys
import uuid

from llama_stack_client import Agent, LlamaStackClient
from opentelemetry import trace

LLAMA_STACK_URL = os.environ.get("LLAMA_STACK_URL", "http://localhost:8321")
MODEL = os.environ.get("INFERENCE_MODEL", "meta-llama/Llama-3.1-8B-Instruct")
# Small models search only when told to: TOOL_CHOICE=knowledge_search makes them.
TOOL_CHOICE = os.environ.get("TOOL_CHOICE", "auto")
QUESTIONS = ("Should I use npm to start a node.js application?", "How should a Node.js service handle SIGTERM?")
DOCUMENTS = {
    "starting.md": "Do not start a Node.js application with npm start in production: run node server.js "
                   "directly, so that signals such as SIGTERM reach the node process.",
    "shutdown.md": "On SIGTERM a Node.js service should stop accepting connections, finish the requests in "
                   "flight, close its database pool and exit with status 0.",
}


def main(questions: tuple[str, ...] | list[str] = QUESTIONS) -> None:
    client = LlamaStackClient(base_url=LLAMA_STACK_URL)
    vector_db_id = f"example-{uuid.uuid4()}"
    with trace.get_tracer(__name__).start_as_current_span("agent_rag_app run"):
        client.vector_dbs.register(vector_db_id=vector_db_id, embedding_model="all-MiniLM-L6-v2",
                                   embedding_dimension=384)
        agent = None
        try:
            client.tool_runtime.rag_tool.insert(
                documents=[{"document_id": name, "content": text, "mime_type": "text/plain", "metadata": {}}
                           for name, text in DOCUMENTS.items()],
                vector_db_id=vector_db_id, chunk_size_in_tokens=125)
            agent = Agent(client, model=MODEL, instructions="Answer from the documents only, in two sentences.",
                          tools=[{"name": "builtin::rag/knowledge_search", "args": {"vector_db_ids": [vector_db_id]}}],
                          tool_config={"tool_choice": TOOL_CHOICE})
            session_id = agent.create_session("example-session")
            for question in questions:
                print(f"QUESTION: {question}\nANSWER: ", end="", flush=True)
                for chunk in agent.create_turn(messages=[{"role": "user", "content": question}],
                                               session_id=session_id, stream=True):
                    payload = chunk.event.payload
                    if payload.event_type == "step_progress" and getattr(payload.delta, "type", None) == "text":
                        print(payload.delta.text, end="", flush=True)
                print()
        finally:
            if agent is not None:
                client.agents.delete(agent.agent_id)
            client.vector_dbs.unregister(vector_db_id)
        print(f"Trace ID: {trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)}")


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's import turns on a line per request
    main(sys.argv[1:] or QUESTIONS)
