"""The client library's Agent and AsyncAgent: one ``invoke_agent`` per turn, holding the whole turn.

On 0.7 and OGX the Agent runs on the Responses and Conversations APIs: create_session is a
conversation, create_turn a loop of responses.create while client-side function calls remain.
The turn is one span; every responses.create in it is not a span of its own; each tool run, the
server's (file_search) and the Agent's own (a client tool), is an ``execute_tool`` under it. On
0.2.x the Agent runs on the agents API: initialize is create_agent, create_turn invoke_agent,
read from the turn's events (shaped like Llama Stack 0.2.12's, canned_llama_stack.rag_turn).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from client_under_test import agent_module, only_agents_api, only_responses_agent
from conftest import ANSWER, CHUNK_TEXT, QUESTION
from in_memory import recorded
from opentelemetry.trace import StatusCode
from shared_checks import FILE_SEARCH, a_streamed_turn_with_both_sides_tools

from canned_llama_stack import MODEL, rag_turn, usage_metrics
from llama_stack_otel_instrumentation import agent_name
from llama_stack_otel_instrumentation import semconv as genai
from llama_stack_otel_instrumentation.payloads import text_of

INSTRUCTIONS = "ICANARY-66aa: answer from the documents only"
CANARIES = ("QCANARY-20b1", "DCANARY-4c7d", "ACANARY-9e02", "ICANARY-66aa")


# --- 0.7 and OGX: the Responses API's Agent


@only_responses_agent
def test_a_streamed_turn_is_one_invoke_agent_with_both_sides_tools(traced):
    t = traced()
    turn = a_streamed_turn_with_both_sides_tools(t, agent_module, instructions=INSTRUCTIONS,
                                                 messages=[{"role": "user", "content": QUESTION}])
    spans, invoke = turn.spans, turn.invoke
    function, search = turn.by_name["execute_tool lookup_pid"], turn.by_name["execute_tool file_search"]
    assert function.attributes[genai.TOOL_TYPE] == "function" and function.attributes[genai.TOOL_CALL_ID] == "call_fn_1"
    assert function.start_time < turn.ran[0][1] < function.end_time  # the Agent ran the tool inside its span
    assert (search.attributes[genai.TOOL_TYPE], search.attributes[genai.DATA_SOURCE_ID]) == ("datastore", "vs_1")
    assert {key: invoke.attributes[key] for key in (
        genai.OPERATION_NAME, genai.CONVERSATION_ID, genai.REQUEST_MODEL, genai.DATA_SOURCE_ID, genai.RESPONSE_ID,
        genai.FINISH_REASONS, genai.INPUT_TOKENS, genai.OUTPUT_TOKENS, genai.ANSWER_CHARS)} == {
        genai.OPERATION_NAME: "invoke_agent", genai.CONVERSATION_ID: "conv_1", genai.REQUEST_MODEL: MODEL,
        genai.DATA_SOURCE_ID: "vs_1", genai.RESPONSE_ID: "resp_1", genai.FINISH_REASONS: ("completed",),
        genai.INPUT_TOKENS: 120, genai.OUTPUT_TOKENS: 9, genai.ANSWER_CHARS: len("".join(ANSWER))}
    assert invoke.attributes[genai.TIME_TO_FIRST_CHUNK] > 0
    assert not any(canary in recorded(spans) for canary in CANARIES)


@only_responses_agent
def test_a_whole_turn_is_read_from_its_response(traced):
    t = traced()
    t.instrument()
    agent = agent_module.Agent(t.client(), model=MODEL, instructions=INSTRUCTIONS, tools=[FILE_SEARCH])
    response = agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                                 session_id=agent.create_session("s"), stream=False)
    assert response.id == "resp_1"
    [invoke] = [s for s in t.span_list() if s.name.startswith("invoke_agent")]
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))
    assert invoke.attributes[genai.INPUT_TOKENS] == 120
    assert "execute_tool file_search" in {s.name for s in t.span_list()}


@only_responses_agent
def test_the_async_agent_fails_exactly_as_without_instrumentation(traced):
    """0.7.x's and OGX 1.x's AsyncAgent calls an initialize() it does not have."""

    async def turn(client) -> BaseException | None:
        agent = agent_module.AsyncAgent(client, model=MODEL, instructions=INSTRUCTIONS)
        session = await agent.create_session("s")
        try:
            async for _ in await agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                                                   session_id=session):
                pass
        except Exception as exc:  # noqa: BLE001 - compared below
            return exc
        return None

    t = traced()
    without = asyncio.run(turn(t.async_client()))
    t.instrument()
    with_it = asyncio.run(turn(t.async_client()))
    assert (type(with_it), str(with_it)) == (type(without), str(without))
    [invoke] = [s for s in t.span_list() if s.name.startswith("invoke_agent")]
    if without is not None:
        assert invoke.status.status_code == StatusCode.ERROR
        assert invoke.attributes[genai.ERROR_TYPE] == type(without).__qualname__


@only_responses_agent
def test_a_turn_that_ends_incomplete_fails_in_the_agent_exactly_as_without_it(traced):
    """Issue 18's "RuntimeError: No response available": the Agent's own answer to a response that
    ends ``response.incomplete`` (its synthesizer keeps only a completed response) — the 270M model
    on the local stacks often hits the output limit. Without the instrumentor it is raised the same;
    with it, the turn's span records it."""
    from canned_llama_stack import rag_response

    def turn(client) -> tuple:
        agent = agent_module.Agent(client, model=MODEL, instructions=INSTRUCTIONS)
        try:
            list(agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                                   session_id=agent.create_session("s")))
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc), str(exc)
        return None, None

    t = traced()
    t.canned.response = rag_response(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER, status="incomplete")
    without = turn(t.client())
    t.instrument()
    assert turn(t.client()) == without
    if without[0] is not None:  # 0.7.x and OGX 1.0-1.1: RuntimeError("No response available")
        [invoke] = [s for s in t.span_list() if s.name.startswith("invoke_agent")]
        assert invoke.attributes[genai.ERROR_TYPE] == without[0].__qualname__


@only_responses_agent
def test_a_failed_turn_is_an_error_without_the_servers_text(traced):
    t = traced()
    t.canned.response = [*t.canned.response[:2], {"type": "response.failed", "response": {
        "id": "resp_1", "status": "failed", "error": {"message": f"model crashed on {QUESTION}"}}}]
    t.instrument()
    agent = agent_module.Agent(t.client(), model=MODEL, instructions=INSTRUCTIONS)
    chunks = list(agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                                    session_id=agent.create_session("s")))
    assert type(chunks[-1].event).__name__ == "TurnFailed"
    [invoke] = [s for s in t.span_list() if s.name.startswith("invoke_agent")]
    assert invoke.status.status_code == StatusCode.ERROR and invoke.attributes[genai.ERROR_TYPE] == genai.STREAM_ERROR
    assert "QCANARY-20b1" not in recorded(t.span_list())


# --- 0.2.x: the agents API's Agent


def turn(**kwargs) -> list[dict]:
    return rag_turn(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER, **kwargs)


def agent_turn(t, events: list[dict], *, capture_content: bool = False):
    """A streamed turn of a RAG agent, read to the end as an app does."""
    t.canned.turn = events
    t.instrument(capture_content=capture_content)
    with agent_name("rag-agent"):
        agent = agent_module.Agent(t.client(), model="m", instructions="answer from the documents",
                                   tools=[{"name": "builtin::rag/knowledge_search",
                                           "args": {"vector_db_ids": ["test-vector-db-unit"]}}])
        session_id = agent.create_session("rag-session-unit")
        return list(agent.create_turn(messages=[{"role": "user", "content": QUESTION}], session_id=session_id))


@only_agents_api
def test_a_02_turn_is_invoke_agent_with_its_knowledge_search(traced):
    t = traced()
    agent_turn(t, turn())
    spans = t.spans()
    invoke, tool = spans["invoke_agent rag-agent"], spans["execute_tool knowledge_search"]
    assert 0 < invoke.attributes[genai.TIME_TO_FIRST_CHUNK] < (invoke.end_time - invoke.start_time) / 1e9
    assert (invoke.attributes[genai.QUESTION_CHARS], invoke.attributes[genai.ANSWER_CHARS]) == (
        len(QUESTION), len("".join(ANSWER)))
    assert invoke.attributes[genai.FINISH_REASONS] == ("end_of_turn",)
    assert tool.parent.span_id == invoke.context.span_id
    tool_step = turn()[6]["event"]["payload"]["step_details"]
    assert dict(tool.attributes) == {
        genai.OPERATION_NAME: "execute_tool", genai.TOOL_NAME: "knowledge_search", genai.TOOL_CALL_ID: "call-1",
        genai.TOOL_TYPE: "datastore", genai.DATA_SOURCE_ID: "test-vector-db-unit", genai.RETRIEVED_CHUNKS: 2,
        genai.RETRIEVED_CHARS: len(text_of(tool_step["tool_responses"][0]["content"])),
        genai.OPENINFERENCE_SPAN_KIND: "RETRIEVER"}
    create, session = spans["create_agent rag-agent"], spans["create_session rag-agent"]
    assert create.attributes[genai.OPERATION_NAME] == "create_agent"
    assert genai.OPERATION_NAME not in session.attributes  # not an operation in the registry
    assert session.attributes[genai.CONVERSATION_ID] == invoke.attributes[genai.CONVERSATION_ID] == "session-1"
    assert not any(canary in recorded(spans.values()) for canary in CANARIES)


@only_agents_api
def test_a_02_turns_content_on_opt_in(traced):
    t = traced()
    agent_turn(t, turn(), capture_content=True)
    spans = t.spans()
    invoke, tool = spans["invoke_agent rag-agent"], spans["execute_tool knowledge_search"]
    assert json.loads(invoke.attributes[genai.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    assert json.loads(tool.attributes[genai.TOOL_CALL_ARGUMENTS]) == {"query": QUESTION}
    assert CHUNK_TEXT in tool.attributes[genai.TOOL_CALL_RESULT]


@only_agents_api
def test_a_02_turns_usage_and_metrics(traced):
    t = traced()
    agent_turn(t, turn(inference_metrics=usage_metrics(100, 7)))
    invoke = t.spans()["invoke_agent rag-agent"]
    assert (invoke.attributes[genai.INPUT_TOKENS], invoke.attributes[genai.OUTPUT_TOKENS]) == (200, 14)
    points = t.points()
    durations = {attrs[genai.OPERATION_NAME] for name, attrs, _ in points if name == genai.OPERATION_DURATION}
    assert durations == {"create_agent", "invoke_agent"}


@only_agents_api
def test_a_failed_02_turn(traced):
    t = traced()
    chunks = agent_turn(t, [*turn()[:2], {"error": {"message": f"400: Invalid value: {QUESTION}"}}])
    assert chunks[-1].error  # the app still gets the server's error chunk
    invoke = t.spans()["invoke_agent rag-agent"]
    assert invoke.status.status_code == StatusCode.ERROR and invoke.attributes[genai.ERROR_TYPE] == genai.STREAM_ERROR
    assert "QCANARY-7f3e" not in recorded(t.span_list())


@pytest.mark.parametrize("streamed", [True, False])
@only_agents_api
def test_the_agents_own_calls_are_not_traced_twice(traced, streamed):
    t = traced()
    t.instrument()
    agent = agent_module.Agent(t.client(), model="m", instructions="i")
    result = agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                               session_id=agent.create_session("s"), stream=streamed)
    if streamed:
        list(result)
    names = sorted(s.name for s in t.span_list() if not s.name.startswith("execute_tool"))
    assert names == ["create_agent", "create_session", "invoke_agent"]


@only_agents_api
def test_a_02_async_agent_turn(traced):
    async def run(client) -> list:
        agent = agent_module.AsyncAgent(client, model="m", instructions="i",
                                        tools=[{"name": "builtin::rag/knowledge_search",
                                                "args": {"vector_db_ids": ["db"]}}])
        session = await agent.create_session("s")
        return [chunk.model_dump() async for chunk in await agent.create_turn(messages=[{"role": "user",
                                                                                        "content": QUESTION}],
                                                                             session_id=session)]

    t = traced()
    without = asyncio.run(run(t.async_client()))
    t.instrument()
    assert asyncio.run(run(t.async_client())) == without
    names = sorted(s.name for s in t.span_list())
    assert names == ["create_agent", "create_session", "execute_tool knowledge_search", "invoke_agent"]
