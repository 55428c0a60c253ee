"""Checks that read the same on both client lines: each client line's tests run them on their
own ``Traced`` and client, then assert what is theirs alone. Like in_memory, it imports no client
(the Agent's module is handed in).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar

from canned_llama_stack import MODEL, function_call_response
from llama_stack_otel_instrumentation import agent_name
from llama_stack_otel_instrumentation import semconv as genai

FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}
_R = TypeVar("_R")


def with_and_without(t: Any, run: Callable[[], _R]) -> tuple[_R, _R]:
    """What the app got from run() on the bare client, then with the instrumentor on."""
    without = run()
    t.instrument()
    return without, run()


def assert_the_http_call_nests_under_invoke_agent(t: Any, call: Callable[[Any], object]) -> dict:
    """call(client) makes one streamed Responses call, with httpx's instrumentation on too: its
    POST span is a child of invoke_agent, and the traceparent the server saw names them. Returns
    the spans by name."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    t.instrument()
    HTTPXClientInstrumentor().instrument(tracer_provider=t.tracer_provider)
    try:
        call(t.client())  # the client made after: httpx's instrumentation wraps the clients made from then on
    finally:
        HTTPXClientInstrumentor().uninstrument()
    spans = t.spans()
    invoke, http = spans["invoke_agent"], spans["POST"]
    assert http.parent.span_id == invoke.context.span_id
    [seen] = [s for s in t.canned.seen if s.path == "/v1/responses"]
    assert re.fullmatch(rf"00-{invoke.context.trace_id:032x}-{http.context.span_id:016x}-0[13]",
                        seen.headers["traceparent"])
    return spans


def pid_tool(agent_module: Any, ran: list, client: Any = None):
    """A client tool (the Agent runs it): each run adds (name, time.time_ns()) to ``ran``, and
    with a client makes a chat completion of its own (the app's code using the client)."""
    client_tool = import_module(agent_module.__name__.rsplit(".", 1)[0] + ".client_tool").client_tool

    @client_tool
    def lookup_pid(name: str) -> str:
        """Find the id of a running process.

        :param name: the process name
        """
        ran.append((name, time.time_ns()))
        if client is not None:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"pid of {name}?"}])
        return "4242"

    return lookup_pid


@dataclass
class ToolTurn:
    spans: list
    invoke: Any  # the turn's invoke_agent span
    by_name: dict
    ran: list  # (name, time.time_ns()) of each run of the client tool


def a_streamed_turn_with_both_sides_tools(t: Any, agent_module: Any, *, instructions: str, messages: list) -> ToolTurn:
    """The Agent (as "rag-agent") streams one turn with file_search, the server's tool, and
    lookup_pid, a client tool the model calls once: the turn completes after a tool round trip,
    as one invoke_agent with both tools' execute_tool under it, in the conversation it made. The
    client tool's own client call is traced as usual, under its execute_tool."""
    ran: list = []
    t.canned.responses_first = [function_call_response(name="lookup_pid", arguments='{"name": "node"}')]
    t.instrument()
    with agent_name("rag-agent"):
        client = t.client()
        agent = agent_module.Agent(client, model=MODEL, instructions=instructions,
                                   tools=[FILE_SEARCH, pid_tool(agent_module, ran, client)])
        session = agent.create_session("s")
        chunks = list(agent.create_turn(messages=messages, session_id=session))
    assert [name for name, _ in ran] == ["node"]
    assert type(chunks[-1].event).__name__ == "TurnCompleted"
    assert [s.path for s in t.canned.seen].count("/v1/responses") == 2  # a tool round trip: two responses
    spans = t.span_list()
    invokes = [s for s in spans if s.name.startswith("invoke_agent")]
    assert [s.name for s in invokes] == ["invoke_agent rag-agent"]  # the turn, not each responses.create
    [invoke] = invokes
    by_name = {s.name: s for s in spans}
    assert by_name["execute_tool lookup_pid"].parent.span_id == invoke.context.span_id
    assert by_name["execute_tool file_search"].parent.span_id == invoke.context.span_id
    # The app's tool code: its chat completion is a span of its own, under the tool's span.
    assert by_name[f"chat {MODEL}"].parent.span_id == by_name["execute_tool lookup_pid"].context.span_id
    assert by_name["create_conversation"].attributes[genai.CONVERSATION_ID] == "conv_1"
    return ToolTurn(spans=spans, invoke=invoke, by_name=by_name, ran=ran)
