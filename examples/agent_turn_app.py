#!/usr/bin/env python3
"""The library Agent of llama-stack-client 0.7 (on Llama Stack 0.7.x or OGX), with no tracing code
but its one top-level span, traced from the outside by the instrumentor (Python 3.12+):

    pip install ./instrumentation llama-stack-client==0.7.5 opentelemetry-distro==0.66b2 \\
        opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-instrumentation-httpx==0.66b2
    OTEL_SERVICE_NAME=agent-turn-app OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
    LLAMA_STACK_URL=http://localhost:8321 INFERENCE_MODEL=llama-cpp/gemma3-270m \\
        opentelemetry-instrument python examples/agent_turn_app.py "How should a Node.js service handle SIGTERM?"

The Agent runs on the Responses and Conversations APIs: its session is a conversation
(create_conversation), and its streamed turn one invoke_agent span holding every Responses call
and tool run of the turn, however many round trips it takes.
"""

from __future__ import annotations

import logging
import os
import sys

from llama_stack_client import LlamaStackClient
from llama_stack_client.lib.agents.agent import Agent
from opentelemetry import trace

LLAMA_STACK_URL = os.environ.get("LLAMA_STACK_URL", "http://localhost:8321")
MODEL = os.environ.get("INFERENCE_MODEL", "llama-cpp/gemma3-270m")
QUESTION = "How should a Node.js service handle SIGTERM?"


def main(question: str = QUESTION) -> None:
    client = LlamaStackClient(base_url=LLAMA_STACK_URL)
    with trace.get_tracer(__name__).start_as_current_span("agent_turn_app run"):
        agent = Agent(client, model=MODEL, instructions="Answer in one sentence.")
        session = agent.create_session("example-session")
        print(f"QUESTION: {question}\nANSWER: ", end="", flush=True)
        turn_response = None  # the turn's last response, stored on the server like any other
        try:
            for chunk in agent.create_turn(messages=[{"role": "user", "content": question}], session_id=session):
                delta = getattr(chunk.event, "delta", None)
                print(getattr(delta, "text", "") or "", end="", flush=True)
                turn_response = chunk.response or turn_response
        except RuntimeError as error:  # what the Agent raises when the answer hit the server's token limit
            print(f" [{error}]", end="")
        print()
        if turn_response is not None:
            client.responses.delete(turn_response.id)
        client.conversations.delete(session)
        print(f"Trace ID: {trace.format_trace_id(trace.get_current_span().get_span_context().trace_id)}")


if __name__ == "__main__":
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client turns on a line per request
    main(" ".join(sys.argv[1:]) or QUESTION)
