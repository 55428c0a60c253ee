"""The llama-stack-client instrumentor on its own: what it traces, what it leaves alone, and that
the app's calls come out exactly as they would without it — also when its telemetry breaks.

The real client talks over loopback HTTP to a canned Llama Stack (canned_llama_stack.py);
spans go to an in-memory exporter, metrics to an in-memory reader. Agent turns are covered
in test_turn_events.py; here: the Responses API (the generic client.post the script uses on
0.4+, and the client's own method), whole answers, early and failed ends of a stream,
uninstrument, content opt-in values, broken span processors and exporters, the HTTP call
nesting under invoke_agent, and the entry point that opentelemetry-instrument loads.
"""

from __future__ import annotations

import json

import pytest
from client_under_test import AGENTS_API, Stream, agent_module, base_client, client_package, only_agents_api
from conftest import ANSWER, CHUNK_TEXT, QUESTION
from in_memory import recorded
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from shared_checks import assert_the_http_call_nests_under_invoke_agent

from canned_llama_stack import rag_response
from llama_stack_otel_instrumentation import agent_name
from llama_stack_otel_instrumentation import semconv as genai

INSTRUCTIONS = "ICANARY-66aa: answer from the documents only"
CANARIES = ("QCANARY-20b1", "DCANARY-4c7d", "ACANARY-9e02", "ICANARY-66aa")
BODY = {"model": "llama-cpp/gemma3-270m", "input": QUESTION, "instructions": INSTRUCTIONS, "stream": True,
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}], "include": ["file_search_call.results"]}


def stream_responses(client, body: dict | None = None) -> list:
    """A streamed response as the script asks for one on 0.4+: the client's generic post."""
    return list(client.post("/v1/responses", cast_to=object, body=body or BODY, stream=True,
                            stream_cls=Stream[object]))


# --- The Responses API (0.4+, OGX)


def test_a_streamed_response_is_invoke_agent_with_its_file_search(traced):
    t = traced()
    t.instrument()
    with agent_name("rag-agent"):
        events = stream_responses(t.client())
    assert [e["type"] for e in events] == [e["type"] for e in t.canned.response]  # the same events
    spans = t.spans()
    invoke, search = spans["invoke_agent rag-agent"], spans["execute_tool file_search"]
    assert invoke.kind == SpanKind.CLIENT and invoke.status.status_code == StatusCode.UNSET
    assert {key: invoke.attributes[key] for key in (
        genai.OPERATION_NAME, genai.AGENT_NAME, genai.REQUEST_MODEL, genai.PROVIDER_NAME, genai.DATA_SOURCE_ID,
        genai.RESPONSE_ID, genai.FINISH_REASONS, genai.INPUT_TOKENS, genai.OUTPUT_TOKENS, genai.QUESTION_CHARS,
        genai.ANSWER_CHARS, genai.OPENINFERENCE_SPAN_KIND)} == {
        genai.OPERATION_NAME: "invoke_agent", genai.AGENT_NAME: "rag-agent",
        genai.REQUEST_MODEL: "llama-cpp/gemma3-270m", genai.PROVIDER_NAME: "llama_stack",
        genai.DATA_SOURCE_ID: "vs_1", genai.RESPONSE_ID: "resp_1", genai.FINISH_REASONS: ("completed",),
        genai.INPUT_TOKENS: 120, genai.OUTPUT_TOKENS: 9, genai.QUESTION_CHARS: len(QUESTION),
        genai.ANSWER_CHARS: len("".join(ANSWER)), genai.OPENINFERENCE_SPAN_KIND: "AGENT"}
    assert 0 < invoke.attributes[genai.TIME_TO_FIRST_CHUNK] < (invoke.end_time - invoke.start_time) / 1e9
    assert search.parent.span_id == invoke.context.span_id
    assert dict(search.attributes) == {
        genai.OPERATION_NAME: "execute_tool", genai.TOOL_NAME: "file_search", genai.TOOL_TYPE: "datastore",
        genai.TOOL_CALL_ID: "fs_1", genai.DATA_SOURCE_ID: "vs_1", genai.RETRIEVED_CHUNKS: 2,
        genai.RETRIEVED_CHARS: len(CHUNK_TEXT) + len("use a process manager"),
        genai.OPENINFERENCE_SPAN_KIND: "RETRIEVER"}
    # From the server announcing the search to its result, inside the call.
    assert invoke.start_time < search.start_time < search.end_time < invoke.end_time


def test_response_metrics(traced):
    t = traced()
    t.instrument()
    stream_responses(t.client())
    points = {(name, attrs.get(genai.TOKEN_TYPE)): (attrs, p) for name, attrs, p in t.points()}
    attrs, duration = points["gen_ai.client.operation.duration", None]
    assert (attrs[genai.OPERATION_NAME], attrs[genai.REQUEST_MODEL], duration.count) == (
        "invoke_agent", "llama-cpp/gemma3-270m", 1)
    assert points["gen_ai.client.token.usage", "input"][1].sum == 120
    assert points["gen_ai.client.token.usage", "output"][1].sum == 9
    first_chunk = points["gen_ai.client.operation.time_to_first_chunk", None][1]
    assert first_chunk.count == 1 and 0 < first_chunk.sum <= duration.sum


def test_the_clients_own_responses_method_and_a_whole_response(traced):
    """client.responses.create (0.2.12's client sends it to /v1/openai/v1/responses, 0.7 and OGX to
    /v1/responses), not streamed."""
    t = traced()
    t.instrument()
    response = t.client().responses.create(model="m", input=QUESTION,
                                           tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}])
    assert response.id == "resp_1"
    spans = t.spans()
    invoke = spans["invoke_agent"]  # no agent named
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))
    assert genai.TIME_TO_FIRST_CHUNK not in invoke.attributes  # nothing streamed
    assert spans["execute_tool file_search"].attributes[genai.RETRIEVED_CHUNKS] == 2


def test_a_response_the_server_failed_is_an_error_without_its_text(traced):
    t = traced()
    t.canned.response = [*t.canned.response[:2], {"type": "response.failed", "response": {
        "id": "resp_1", "status": "failed", "error": {"message": f"model crashed on {QUESTION}"}}}]
    t.instrument()
    events = stream_responses(t.client())  # the app still gets every event
    assert events[-1]["type"] == "response.failed"
    invoke = t.spans()["invoke_agent"]
    assert invoke.status.status_code == StatusCode.ERROR
    assert invoke.attributes["error.type"] == genai.STREAM_ERROR
    assert QUESTION not in recorded(t.spans().values())


def test_an_incomplete_response_says_why(traced):
    t = traced()
    t.canned.response = rag_response(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER, status="incomplete")
    t.instrument()
    stream_responses(t.client())
    invoke = t.spans()["invoke_agent"]
    assert invoke.attributes[genai.FINISH_REASONS] == ("length",) and invoke.status.status_code == StatusCode.UNSET


# --- Ends of a stream


def test_a_stream_closed_early_ends_its_span(traced):
    t = traced()
    t.instrument()
    stream = t.client().post("/v1/responses", cast_to=object, body=BODY, stream=True, stream_cls=Stream[object])
    assert isinstance(stream, Stream)  # what the app checks still holds
    first = next(iter(stream))
    assert first["type"] == "response.created"
    assert "invoke_agent" not in t.spans()  # still open while the app reads
    stream.close()
    invoke = t.spans()["invoke_agent"]
    assert invoke.status.status_code == StatusCode.UNSET and invoke.attributes[genai.ANSWER_CHARS] == 0


def test_the_apps_own_failure_while_reading_is_recorded_on_the_span(traced):
    """``with stream:`` hands the app's exception to the stream (the script's backends.reading)."""
    t = traced()
    t.instrument()
    stream = t.client().post("/v1/responses", cast_to=object, body=BODY, stream=True, stream_cls=Stream[object])
    with pytest.raises(KeyboardInterrupt), stream:
        for event in stream:
            if event["type"] == "response.output_text.delta":
                raise KeyboardInterrupt
    invoke = t.spans()["invoke_agent"]
    assert invoke.status.status_code == StatusCode.ERROR and "SIGINT" in invoke.status.description
    assert [e.attributes["exception.type"] for e in invoke.events] == ["KeyboardInterrupt"]
    assert invoke.attributes["error.type"] == "KeyboardInterrupt"


def test_a_stream_given_up_without_a_word_ends_its_span_when_collected(traced):
    import gc

    t = traced()
    t.instrument()
    stream = t.client().post("/v1/responses", cast_to=object, body=BODY, stream=True, stream_cls=Stream[object])
    next(iter(stream))
    del stream
    gc.collect()
    assert t.spans()["invoke_agent"].status.status_code == StatusCode.ERROR  # abandoned, says util-genai


def test_an_http_error_reaches_the_app_as_before_and_fails_the_span(traced):
    """The server refuses the call (and quotes the question back): the app gets the client's own
    exception; the span is an error that names the HTTP status, not the server's text."""
    t = traced()
    t.canned.refuse_with = 400
    t.instrument()
    with pytest.raises(client_package.BadRequestError) as raised:
        stream_responses(t.client())
    assert QUESTION in str(raised.value)  # the app still learns what the server said
    invoke = t.spans()["invoke_agent"]
    assert invoke.status.status_code == StatusCode.ERROR
    assert invoke.status.description == "HTTP 400 to POST /v1/responses"
    assert invoke.attributes["error.type"] == "BadRequestError"
    assert QUESTION not in recorded(t.spans().values())


def test_calls_it_does_not_trace_go_straight_through(traced):
    t = traced()
    t.instrument()
    client = t.client()
    assert client.get("/v1/tools", cast_to=object)["data"][0]["identifier"] == "knowledge_search"
    client.delete("/v1/agents/agent-1", cast_to=object)
    if AGENTS_API:
        assert client.tools.list()[0].identifier == "knowledge_search"
        client.agents.delete("agent-1")
    assert t.spans() == {}


# --- Uninstrument, content, and telemetry that breaks


def test_uninstrument_restores_the_client_exactly(traced):
    hooked = [(base_client.SyncAPIClient, "request"), (base_client.AsyncAPIClient, "request"),
              (agent_module.Agent, "create_turn"), (agent_module.AsyncAgent, "create_turn")]
    if AGENTS_API:
        hooked.append((agent_module.Agent, "initialize"))

    def current():  # the functions themselves: a wrapper compares equal to what it wraps
        return [vars(owner)[name] for owner, name in hooked]

    originals = current()
    t = traced()
    t.instrument()
    assert all(now is not before for now, before in zip(current(), originals, strict=True))
    t.instrumentor.uninstrument()
    assert all(now is before for now, before in zip(current(), originals, strict=True))
    stream_responses(t.client())
    assert t.spans() == {}  # nothing traced any more


@pytest.mark.parametrize("value, captured", [
    ("", False), ("false", False), ("NO_CONTENT", False), ("EVENT_ONLY", False), ("maybe", False),
    ("true", True), ("1", True), ("yes", True), ("on", True), ("SPAN_ONLY", True), ("span_and_event", True),
])
def test_content_only_when_the_variable_asks_for_span_content(traced, monkeypatch, value, captured):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    t = traced()
    t.instrument()
    stream_responses(t.client())
    everything = recorded(t.spans().values())
    assert all((canary in everything) is captured for canary in CANARIES), everything
    if captured:
        invoke = t.spans()["invoke_agent"]
        assert json.loads(invoke.attributes[genai.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": INSTRUCTIONS}]
        assert json.loads(invoke.attributes[genai.OUTPUT_MESSAGES]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": "".join(ANSWER)}]}]
        assert invoke.attributes[genai.INPUT_VALUE] == QUESTION  # what Phoenix shows as the input


class Exploding(SpanProcessor):
    def __init__(self, *, on_start: bool = False, on_end: bool = False) -> None:
        self.explode_on_start, self.explode_on_end = on_start, on_end

    def on_start(self, span, parent_context=None) -> None:
        if self.explode_on_start:
            raise RuntimeError("span processor broke on start")

    def on_end(self, span) -> None:
        if self.explode_on_end:
            raise RuntimeError("span processor broke on end")


class BrokenExporter(SpanExporter):
    def export(self, spans):
        raise ConnectionError("the collector is gone")


def run_everything(client) -> tuple:
    """What an app does on both generations: an agent, a streamed and a whole turn, a streamed
    response; returns everything the app got, for comparing with and without telemetry."""
    Agent = agent_module.Agent

    with agent_name("rag-agent"):
        agent = Agent(client, model="m", instructions=INSTRUCTIONS,
                      tools=[{"name": "builtin::rag/knowledge_search", "args": {"vector_db_ids": ["db"]}}])
        session = agent.create_session("s")
        streamed = [c.model_dump() for c in agent.create_turn(messages=[{"role": "user", "content": QUESTION}],
                                                               session_id=session)]
        whole = agent.create_turn(messages=[{"role": "user", "content": QUESTION}], session_id=session,
                                  stream=False).model_dump()
        events = stream_responses(client)
    return agent.agent_id, session, streamed, whole, events


@only_agents_api
@pytest.mark.parametrize("breakage", ["on_start", "on_end", "exporter"])
def test_broken_telemetry_leaves_the_apps_answers_unchanged(traced, breakage):
    untraced = run_everything(traced().client())
    processor = SimpleSpanProcessor(BrokenExporter()) if breakage == "exporter" else Exploding(**{breakage: True})
    t = traced(processor=processor)
    t.instrument()
    assert run_everything(t.client()) == untraced


def test_a_failure_in_reading_an_event_leaves_the_stream_alone(traced, monkeypatch):
    from llama_stack_otel_instrumentation import responses

    def broken(self, event):
        raise ValueError("the event reader broke")

    monkeypatch.setattr(responses.ResponseEvents, "__call__", broken)
    t = traced()
    t.instrument()
    assert stream_responses(t.client()) == t.canned.response
    assert "invoke_agent" in t.spans()  # it still ended


def test_the_http_call_and_its_traceparent_nest_under_invoke_agent(traced):
    spans = assert_the_http_call_nests_under_invoke_agent(traced(), stream_responses)
    # The app's own work between reads does not nest under invoke_agent.
    assert spans["execute_tool file_search"].parent.span_id == spans["invoke_agent"].context.span_id
